//! The vendors the simulated fleet is made of, with the quirks real vendors show through Enode.
//! A test that wants a quirk picks the vendor that has it.

pub struct ModelSpec {
    pub name: &'static str,
    /// Usable battery, kWh.
    pub capacity_kwh: f64,
    /// Average consumption, kWh per km.
    pub kwh_per_km: f64,
    /// Fastest AC charging the car accepts, kW.
    pub max_ac_kw: f64,
    pub first_year: i32,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Quirks {
    /// After charging completes the car reports UNPLUGGED (and `isPluggedIn: false`) although the
    /// cable is still in: seen with XPENG.
    pub unplugged_when_complete: bool,
    /// The vendor shares no position: `location` is all null and not capable.
    pub no_location: bool,
    /// The vendor gives no time-to-full: `chargeTimeRemaining` stays null while charging.
    pub no_charge_time_remaining: bool,
    /// Charging current can be set (`setMaxCurrent` capability).
    pub set_max_current: bool,
}

pub struct VendorSpec {
    /// Enode's vendor name.
    pub vendor: &'static str,
    pub brand: &'static str,
    /// First three VIN characters (world manufacturer id).
    pub wmi: &'static str,
    pub models: &'static [ModelSpec],
    pub quirks: Quirks,
}

const fn model(name: &'static str, capacity_kwh: f64, kwh_per_km: f64, max_ac_kw: f64, first_year: i32) -> ModelSpec {
    ModelSpec { name, capacity_kwh, kwh_per_km, max_ac_kw, first_year }
}

const NONE: Quirks = Quirks {
    unplugged_when_complete: false,
    no_location: false,
    no_charge_time_remaining: false,
    set_max_current: false,
};

pub static VENDORS: &[VendorSpec] = &[
    VendorSpec {
        vendor: "TESLA",
        brand: "Tesla",
        wmi: "5YJ",
        models: &[model("Model 3", 57.5, 0.145, 11.0, 2019), model("Model Y", 75.0, 0.160, 11.0, 2021)],
        quirks: Quirks { set_max_current: true, ..NONE },
    },
    VendorSpec {
        vendor: "VOLKSWAGEN",
        brand: "Volkswagen",
        wmi: "WVW",
        models: &[model("ID.3", 58.0, 0.160, 11.0, 2020), model("ID.4", 77.0, 0.180, 11.0, 2021)],
        quirks: NONE,
    },
    VendorSpec {
        vendor: "XPENG",
        brand: "XPENG",
        wmi: "LRW",
        models: &[model("G6", 87.5, 0.175, 11.0, 2023), model("P7", 82.7, 0.165, 11.0, 2021)],
        quirks: Quirks { unplugged_when_complete: true, ..NONE },
    },
    VendorSpec {
        vendor: "NIO",
        brand: "NIO",
        wmi: "LJ1",
        models: &[model("ET5", 75.0, 0.170, 11.0, 2022)],
        quirks: Quirks { no_location: true, ..NONE },
    },
    VendorSpec {
        vendor: "KIA",
        brand: "Kia",
        wmi: "KNA",
        models: &[model("EV6", 77.4, 0.175, 11.0, 2021), model("Niro EV", 64.8, 0.160, 11.0, 2019)],
        quirks: Quirks { no_charge_time_remaining: true, ..NONE },
    },
    VendorSpec {
        vendor: "BMW",
        brand: "BMW",
        wmi: "WBA",
        models: &[model("i4 eDrive40", 80.7, 0.170, 11.0, 2022), model("iX3", 74.0, 0.185, 11.0, 2021)],
        quirks: Quirks { set_max_current: true, ..NONE },
    },
];

/// The vendor named `name` (case-insensitive), by index.
pub fn find(name: &str) -> Option<u8> {
    VENDORS.iter().position(|v| v.vendor.eq_ignore_ascii_case(name)).map(|i| i as u8)
}

pub fn spec(index: u8) -> &'static VendorSpec {
    &VENDORS[index as usize % VENDORS.len()]
}

/// Cities the fleet lives around: (latitude, longitude).
pub static HOMES: &[(f64, f64)] = &[
    (59.3293, 18.0686),
    (59.9139, 10.7522),
    (55.6761, 12.5683),
    (52.3676, 4.9041),
    (52.5200, 13.4050),
    (60.1699, 24.9384),
];
