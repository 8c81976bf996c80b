//! Push to Home Assistant, the network side: the HTTP transport the actors' `PushOutbox`
//! delivers through (`transport`), the address guard that keeps pushes off internal networks
//! (`guard`), and what a registration's URL may be (`target_url`).

mod guard;
mod target_url;
mod transport;

pub use guard::{ForbiddenTarget, forbidden};
pub use target_url::{MAX_URL_LEN, masked, webhook_url};
pub use transport::{HttpPushTransport, TransportConfig};
