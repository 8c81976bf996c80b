//! Every Enode endpoint the client calls: its route template (which is also its name in the
//! stats) and whether it may be sent twice.

use reqwest::Method;
use url::Url;

use super::error::EnodeError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// Method and route template, e.g. `GET /vehicles/{id}`: the key in the stats, and
    /// the path the call fills in.
    pub route: &'static str,
    /// Sending it again after a 5xx or a timeout cannot do a thing twice (GET, DELETE, PATCH with
    /// the full new value, a refresh hint). Charge commands, link sessions, webhook creation and
    /// tests are not: a 5xx may come after Enode acted.
    pub idempotent: bool,
}

const fn idempotent(route: &'static str) -> Endpoint {
    Endpoint { route, idempotent: true }
}

const fn once(route: &'static str) -> Endpoint {
    Endpoint { route, idempotent: false }
}

/// The token endpoint's URL is configured whole; the route only names it. Asking twice for a
/// token is harmless.
pub(crate) const TOKEN: Endpoint = idempotent("POST /oauth2/token");
pub(crate) const GET_VEHICLE: Endpoint = idempotent("GET /vehicles/{id}");
pub(crate) const LIST_USER_VEHICLES: Endpoint = idempotent("GET /users/{userId}/vehicles");
pub(crate) const LIST_VEHICLES: Endpoint = idempotent("GET /vehicles");
pub(crate) const CREATE_LINK: Endpoint = once("POST /users/{userId}/link");
pub(crate) const CHARGE: Endpoint = once("POST /vehicles/{id}/charging");
pub(crate) const GET_ACTION: Endpoint = idempotent("GET /vehicles/actions/{id}");
/// Not repeated: a repeat after a cancel that did happen answers 409, which would hide success.
pub(crate) const CANCEL_ACTION: Endpoint = once("POST /vehicles/actions/{id}/cancel");
pub(crate) const REFRESH_HINT: Endpoint = idempotent("POST /vehicles/{id}/refresh-hint");
pub(crate) const DELETE_USER: Endpoint = idempotent("DELETE /users/{userId}");
pub(crate) const UNLINK_VENDOR: Endpoint = idempotent("DELETE /users/{userId}/vendors/{vendor}");
pub(crate) const CREATE_WEBHOOK: Endpoint = once("POST /webhooks");
pub(crate) const LIST_WEBHOOKS: Endpoint = idempotent("GET /webhooks");
pub(crate) const GET_WEBHOOK: Endpoint = idempotent("GET /webhooks/{id}");
pub(crate) const UPDATE_WEBHOOK: Endpoint = idempotent("PATCH /webhooks/{id}");
pub(crate) const DELETE_WEBHOOK: Endpoint = idempotent("DELETE /webhooks/{id}");
pub(crate) const TEST_WEBHOOK: Endpoint = once("POST /webhooks/{id}/test");

impl Endpoint {
    pub fn method(&self) -> Method {
        let (method, _) = self.route.split_once(' ').unwrap_or(("GET", self.route));
        Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET)
    }

    /// `base` with the route's path, each `{placeholder}` replaced by the next of `args`,
    /// percent-encoded (ids are strings the service or Enode chose, and may hold any character).
    pub fn url(&self, base: &Url, args: &[&str]) -> Result<Url, EnodeError> {
        let (_, template) = self.route.split_once(' ').unwrap_or(("", self.route));
        let mut url = base.clone();
        let mut args = args.iter();
        {
            let mut path =
                url.path_segments_mut().map_err(|()| EnodeError::Transport(format!("{base} cannot hold a path")))?;
            path.pop_if_empty();
            for segment in template.split('/').filter(|s| !s.is_empty()) {
                if segment.starts_with('{') {
                    let arg = args.next().ok_or_else(|| missing(self.route))?;
                    path.push(arg);
                } else {
                    path.push(segment);
                }
            }
        }
        if args.next().is_some() {
            return Err(missing(self.route));
        }
        Ok(url)
    }
}

/// A programming error (a call passed the wrong number of ids), reported rather than panicking.
fn missing(route: &str) -> EnodeError {
    EnodeError::Transport(format!("wrong number of path arguments for {route}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_and_encodes_the_route() {
        let base = Url::parse("http://127.0.0.1:8123").unwrap();
        let url = UNLINK_VENDOR.url(&base, &["user 1/x", "TESLA"]).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:8123/users/user%201%2Fx/vendors/TESLA");
        assert_eq!(UNLINK_VENDOR.method(), Method::DELETE);
        // A base with a path prefix keeps it.
        let prefixed = Url::parse("http://h/enode/").unwrap();
        assert_eq!(GET_VEHICLE.url(&prefixed, &["v1"]).unwrap().as_str(), "http://h/enode/vehicles/v1");
        assert_eq!(LIST_VEHICLES.url(&base, &[]).unwrap().path(), "/vehicles");
        assert!(GET_VEHICLE.url(&base, &[]).is_err());
        assert!(LIST_VEHICLES.url(&base, &["extra"]).is_err());
    }

    #[test]
    fn only_commands_that_could_act_twice_are_not_repeated() {
        for endpoint in [CHARGE, CREATE_LINK, CREATE_WEBHOOK, TEST_WEBHOOK, CANCEL_ACTION] {
            assert!(!endpoint.idempotent, "{}", endpoint.route);
            assert_eq!(endpoint.method(), Method::POST);
        }
        for endpoint in [GET_VEHICLE, DELETE_USER, UPDATE_WEBHOOK, TOKEN] {
            assert!(endpoint.idempotent, "{}", endpoint.route);
        }
    }
}
