//! The push outbox sees registrations and delivery state in the store through its `PushStore` port.

use std::sync::Arc;

use async_trait::async_trait;
use evconduit_actors::ports::{PortError, PushStore};
use evconduit_actors::push::{PendingPush, PushHealth, PushRegistration, PushTargetRecord};
use uuid::Uuid;

use super::{Store, into_port_error};

pub struct ActorPushStore(pub Arc<dyn Store>);

#[async_trait]
impl PushStore for ActorPushStore {
    async fn load_push_targets(&self) -> Result<Vec<PushTargetRecord>, PortError> {
        self.0.load_push_targets().await.map_err(into_port_error)
    }

    async fn save_push_registration(&self, registration: &PushRegistration) -> Result<(), PortError> {
        self.0.save_push_registration(registration).await.map_err(into_port_error)
    }

    async fn save_push_pending(&self, vehicle_id: Uuid, pending: &PendingPush) -> Result<(), PortError> {
        self.0.save_push_pending(vehicle_id, pending).await.map_err(into_port_error)
    }

    async fn record_push_attempt(
        &self,
        vehicle_id: Uuid,
        settled: Option<u64>,
        health: &PushHealth,
    ) -> Result<(), PortError> {
        self.0.record_push_attempt(vehicle_id, settled, health).await.map_err(into_port_error)
    }
}
