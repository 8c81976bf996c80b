//! `/openapi.json` describes every route, and every description is real: each documented path
//! answers (not the "no such route" fallback), and each operation says what it does.
//! (`openapi::tests::no_route_bypasses_the_spec` covers the other direction: no route is added
//! without a description.)

use evconduit::store::testing::TestDatabase;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_documented_and_every_documented_route_exists() {
    let db = TestDatabase::sqlite();
    let app = TestApp::start(config(&db)).await;
    let response = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_json(&response);
    let spec: Value = response.json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let paths = spec["paths"].as_object().unwrap();
    for expected in [
        "/api/me",
        "/api/ha/me",
        "/api/v1/ha/me",
        "/api/user/vehicles",
        "/api/ha/vehicles",
        "/api/status/{vehicle_id}",
        "/api/v1/ha/status/{vehicle_id}",
        "/api/user/keys",
        "/api/user/keys/{key_id}",
        "/api/webhook/enode",
        "/api/charging/{vehicle_id}",
        "/api/ha/charging/{vehicle_id}",
        "/api/ha/refresh",
        "/api/user/link-vehicle",
        "/api/user/unlink",
        "/linked",
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/admin",
        "/admin/actors",
        "/admin/actors/{id}",
        "/admin/actors/{id}/refresh",
        "/admin/actors/{id}/restart",
        "/admin/upstream",
        "/admin/webhooks",
        "/admin/push",
        "/admin/users",
        "/admin/store",
    ] {
        assert!(paths.contains_key(expected), "{expected} is not in the spec");
    }
    let mut operation_ids = std::collections::HashSet::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let what = format!("{} {path}", method.to_uppercase());
            let summary = operation["summary"].as_str().or(operation["description"].as_str()).unwrap_or("");
            assert!(!summary.trim().is_empty(), "{what} has no summary or description");
            assert!(!operation["responses"].as_object().unwrap().is_empty(), "{what} lists no responses");
            let id = operation["operationId"].as_str().unwrap_or("");
            assert!(operation_ids.insert(id.to_owned()), "{what}: duplicate operationId {id}");
            // The route exists: whatever it answers, it is not the fallback's "no such route".
            let url = app.url(&path.replace("{vehicle_id}", "x").replace("{key_id}", "x").replace("{id}", "x"));
            let answer = app.http.request(method.to_uppercase().parse().unwrap(), url).send().await.unwrap();
            let status = answer.status();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{what} is documented but not served");
            if status == StatusCode::NOT_FOUND {
                let body: Value = answer.json().await.unwrap_or(Value::Null);
                assert_ne!(body["detail"], "no such route", "{what} is documented but not served");
            }
        }
    }
    // Schemas come along for the bodies.
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    for schema in ["ActorRow", "ActorPage", "VehicleStatus", "ErrorBody", "Upstream"] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }
    app.stop().await;
}
