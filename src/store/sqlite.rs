//! Sqlite implementation of the store. (Placeholder until the store lands.)

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use evconduit_actors::ports::VehicleWrite;
use evconduit_actors::state::VehicleState;
use uuid::Uuid;

use super::*;

pub struct SqliteStore;

impl SqliteStore {
    pub async fn connect(_url: &str) -> Result<Self, StoreError> {
        Err(StoreError::Unavailable("sqlite store not implemented yet".into()))
    }
}

fn todo<T>() -> Result<T, StoreError> {
    Err(StoreError::Unavailable("sqlite store not implemented yet".into()))
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        todo()
    }
    async fn ping(&self) -> Result<(), StoreError> {
        todo()
    }
    async fn create_user(&self, _user: &NewUser) -> Result<User, StoreError> {
        todo()
    }
    async fn user_by_id(&self, _id: Uuid) -> Result<Option<User>, StoreError> {
        todo()
    }
    async fn user_by_email(&self, _email: &str) -> Result<Option<User>, StoreError> {
        todo()
    }
    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        todo()
    }
    async fn create_api_key(&self, _key: &NewApiKey) -> Result<ApiKey, StoreError> {
        todo()
    }
    async fn api_key_by_hash(&self, _hash: &KeyHash) -> Result<Option<ApiKey>, StoreError> {
        todo()
    }
    async fn list_api_keys(&self, _user_id: Uuid) -> Result<Vec<ApiKey>, StoreError> {
        todo()
    }
    async fn revoke_api_key(&self, _id: Uuid, _at: DateTime<Utc>) -> Result<Option<ApiKey>, StoreError> {
        todo()
    }
    async fn keys_revoked_since(&self, _since: DateTime<Utc>) -> Result<Vec<ApiKey>, StoreError> {
        todo()
    }
    async fn touch_api_keys(&self, _used: &[(Uuid, DateTime<Utc>)]) -> Result<(), StoreError> {
        todo()
    }
    async fn load_vehicles(&self) -> Result<Vec<VehicleState>, StoreError> {
        todo()
    }
    async fn write_vehicles(&self, _batch: &[VehicleWrite]) -> Result<(), StoreError> {
        todo()
    }
    async fn record_delivery(&self, _delivery: &NewDelivery) -> Result<DeliveryOutcome, StoreError> {
        todo()
    }
}
