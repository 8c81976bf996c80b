use std::collections::HashSet;
use std::time::Duration;

use evconduit::enode::client::{EnodeError, Outcome, Priority};
use evconduit::enode::model::{API_VERSION, ActionState, ChargeKind, LinkRequest, WebhookRequest, WebhookTestStatus};
use evconduit::enode::sim::{Command, SimConfig};

use crate::helpers::{client, client_config, frozen, some_vehicle, start};

#[tokio::test]
async fn vehicles_are_read_typed_and_every_page_is_followed() {
    let sim = start(frozen(120)).await;
    let enode = client(client_config(&sim));

    let all = enode.list_vehicles(Priority::Background).await.unwrap();
    let ids: HashSet<&str> = all.iter().map(|v| v.id.as_str()).collect();
    assert_eq!((all.len(), ids.len()), (120, 120), "every vehicle once");
    // 50 a page: three requests.
    assert_eq!(sim.stats().count("GET /vehicles", 200), 3);

    let user = sim.users().into_iter().max_by_key(|u| u.vehicle_ids.len()).unwrap();
    let theirs = enode.list_user_vehicles(&user.id, Priority::User).await.unwrap();
    let mut got: Vec<String> = theirs.iter().map(|v| v.id.clone()).collect();
    let mut want = user.vehicle_ids.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);

    let id = some_vehicle(&sim);
    let vehicle = enode.get_vehicle(&id, Priority::User).await.unwrap();
    assert_eq!(vehicle, sim.vehicle(&id).unwrap());
    enode.refresh_hint(&id, Priority::Background).await.unwrap();

    match enode.get_vehicle("no-such-vehicle", Priority::User).await {
        Err(EnodeError::NotFound(problem)) => assert!(problem.kind.ends_with("/not-found"), "{problem:?}"),
        other => panic!("expected NotFound, got {other:?}"),
    }

    let stats = sim.stats();
    assert_eq!(stats.enode_versions.keys().collect::<Vec<_>>(), [API_VERSION]);
    assert_eq!(stats.token_requests, 1);
    let mine = enode.stats();
    assert_eq!(mine.count("GET /vehicles", Outcome::Ok), 3);
    assert_eq!(mine.count("GET /vehicles/{id}", Outcome::NotFound), 1);
    assert_eq!(mine.sent(), stats.total_requests, "the client counts what the simulator saw");
}

#[tokio::test]
async fn charging_commands_and_actions() {
    let sim = start(SimConfig { action_delay: Duration::from_secs(30), ..frozen(6) }).await;
    let enode = client(client_config(&sim));
    let id = sim.startable_vehicle().expect("a startable vehicle");

    let started = enode.charge(&id, ChargeKind::Start).await.unwrap();
    assert_eq!(
        (started.state, started.kind, started.target_id.as_str()),
        (ActionState::Pending, ChargeKind::Start, id.as_str())
    );
    assert_eq!(enode.get_action(&started.id).await.unwrap().state, ActionState::Pending);
    let cancelled = enode.cancel_action(&started.id).await.unwrap();
    assert_eq!(cancelled.state, ActionState::Cancelled);
    assert!(matches!(enode.cancel_action(&started.id).await, Err(EnodeError::Conflict(_))));
    assert!(matches!(enode.get_action("no-such-action").await, Err(EnodeError::NotFound(_))));

    // Unplugged: a precondition failure, typed, with Enode's explanation.
    sim.command(&id, Command::Unplug).unwrap();
    match enode.charge(&id, ChargeKind::Start).await {
        Err(EnodeError::BadRequest(problem)) => assert!(!problem.title.is_empty()),
        other => panic!("expected BadRequest, got {other:?}"),
    }
    // Under smart charging: 422.
    let id = sim.startable_vehicle().expect("a startable vehicle");
    sim.command(&id, Command::SmartChargingOn).unwrap();
    assert!(matches!(enode.charge(&id, ChargeKind::Start).await, Err(EnodeError::Unprocessable(_))));
}

#[tokio::test]
async fn users_links_and_webhooks() {
    let sim = start(frozen(4)).await;
    let enode = client(client_config(&sim));

    let link = LinkRequest {
        vendor_type: "vehicle".to_owned(),
        vendor: None,
        scopes: vec!["vehicle:read:data".to_owned(), "vehicle:control:charging".to_owned()],
        language: "en-US".to_owned(),
        redirect_uri: "https://evconduit.example/linked".to_owned(),
        color_scheme: None,
    };
    // Any string the service picks is a user id, slashes and spaces included.
    let session = enode.create_link_session("new user/1", &link).await.unwrap();
    assert!(!session.link_url.is_empty() && !session.link_token.is_empty());
    assert!(sim.users().iter().any(|u| u.id == "new user/1"));

    let user = sim.users().into_iter().find(|u| !u.vendors.is_empty()).unwrap();
    enode.unlink_vendor(&user.id, &user.vendors[0]).await.unwrap();
    enode.delete_user(&user.id).await.unwrap();
    assert!(enode.list_user_vehicles(&user.id, Priority::User).await.unwrap().is_empty());

    let created = enode
        .create_webhook(&WebhookRequest {
            url: Some("http://127.0.0.1:9/hook".to_owned()),
            secret: Some("hook-secret".to_owned()),
            events: Some(vec!["*".to_owned()]),
            api_version: Some(API_VERSION.to_owned()),
        })
        .await
        .unwrap();
    assert!(created.is_active);
    assert_eq!(enode.list_webhooks().await.unwrap().iter().map(|w| &w.id).collect::<Vec<_>>(), [&created.id]);
    assert_eq!(enode.get_webhook(&created.id).await.unwrap().url, created.url);
    let events = vec!["user:vehicle:updated".to_owned()];
    let updated = enode
        .update_webhook(&created.id, &WebhookRequest { events: Some(events.clone()), ..WebhookRequest::default() })
        .await
        .unwrap();
    assert_eq!(updated.events, events);
    // Nothing listens on port 9: the test fails, and says so in a typed answer.
    let tested = enode.test_webhook(&created.id).await.unwrap();
    assert_eq!(tested.status, WebhookTestStatus::Failure);
    enode.delete_webhook(&created.id).await.unwrap();
    assert!(matches!(enode.get_webhook(&created.id).await, Err(EnodeError::NotFound(_))));
    assert!(matches!(enode.create_webhook(&WebhookRequest::default()).await, Err(EnodeError::BadRequest(_))));
}
