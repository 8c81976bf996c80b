//! The actors see charging sessions in the store through their `SessionStore` port.

use std::sync::Arc;

use async_trait::async_trait;
use evconduit_actors::ports::{PortError, SessionStore};
use evconduit_actors::sessions::{ChargingSession, ElectricityRate, SessionWrite};
use uuid::Uuid;

use super::{Store, into_port_error};

pub struct ActorSessionStore(pub Arc<dyn Store>);

#[async_trait]
impl SessionStore for ActorSessionStore {
    async fn load_open_sessions(&self) -> Result<Vec<ChargingSession>, PortError> {
        self.0.load_open_sessions().await.map_err(into_port_error)
    }

    async fn load_electricity_rates(&self) -> Result<Vec<(Uuid, ElectricityRate)>, PortError> {
        self.0.load_electricity_rates().await.map_err(into_port_error)
    }

    async fn write_sessions(&self, batch: &[SessionWrite]) -> Result<(), PortError> {
        self.0.write_sessions(batch).await.map_err(into_port_error)
    }
}
