//! Budgets shared between replicas through PostgreSQL (`make test` starts one and sets
//! SWITCHBOARD_TEST_POSTGRES_URL). Each replica is a `Budgets::shared` with its own pools.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

mod common;

use std::sync::Arc;
use std::time::SystemTime;

use k8s_openapi::jiff::Timestamp;
use sqlx::{AnyPool, Row};
use switchboard_crds::config::BudgetConfig;
use switchboard_crds::decimal::NanoUsd;
use switchboard_crds::resources::{BudgetEnforcement, BudgetFailureMode, BudgetPeriod, BudgetScopeKind};
use switchboard_gateway::budget::{BudgetExceeded, Budgets, Refusal, period_start};
use switchboard_gateway::db::Database;
use switchboard_gateway::ledger::{Ledger, LedgerRecord};

/// One reservation's worth.
const X: NanoUsd = NanoUsd(1_000_000);
/// Thursday afternoon; the daily period runs from 2026-11-19 to 2026-11-20.
const NOW: &str = "2026-11-19T15:30:00Z";

/// A gateway replica: its own ledger pool and budget store.
async fn replica(url: &str) -> (Ledger, Budgets) {
    let ledger = Ledger::new(Database::connect(url).await.unwrap());
    let budgets = Budgets::shared(ledger.clone()).await.unwrap();
    (ledger, budgets)
}

fn budget(name: &str, limit: NanoUsd, enforcement: BudgetEnforcement) -> BudgetConfig {
    BudgetConfig {
        name: name.to_owned(),
        namespace: "team-ns".to_owned(),
        scope: BudgetScopeKind::Tenant,
        tenant: "team".to_owned(),
        persona: None,
        api_key: None,
        limit,
        period: BudgetPeriod::Daily,
        enforcement,
        warn_at_percent: 80,
        failure_mode: Default::default(),
    }
}

fn times(x: NanoUsd, n: i64) -> NanoUsd {
    NanoUsd(x.0 * n)
}

fn at(text: &str) -> SystemTime {
    text.parse::<Timestamp>().unwrap().into()
}

fn today_ms() -> i64 {
    period_start(BudgetPeriod::Daily, NOW.parse().unwrap()).as_millisecond()
}

/// The budget a refusal says is exhausted (`None` for any other refusal).
fn exceeded(refusal: Refusal) -> Option<BudgetExceeded> {
    match refusal {
        Refusal::Exceeded(exceeded) => Some(exceeded),
        Refusal::Unavailable { .. } | Refusal::Busy { .. } => None,
    }
}

/// The refusal of one more `X`, which reports the counter's spend and holds.
async fn refusal(budgets: &Budgets, config: &BudgetConfig, now: SystemTime) -> BudgetExceeded {
    match budgets.reserve(&[config], X, now).await {
        Ok(_) => panic!("{} should be exhausted", config.name),
        Err(Refusal::Exceeded(exceeded)) => exceeded,
        Err(other) => panic!("{} should be exhausted, not {other}", config.name),
    }
}

async fn count(url: &str, sql: &str) -> i64 {
    let pool = AnyPool::connect(url).await.unwrap();
    let n = sqlx::query(sql).fetch_one(&pool).await.unwrap().try_get(0).unwrap();
    pool.close().await;
    n
}

async fn execute(url: &str, sql: &str) {
    let pool = AnyPool::connect(url).await.unwrap();
    sqlx::query(sql).execute(&pool).await.unwrap();
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_admit_exactly_the_limit() {
    let url = common::fresh_postgres().await;
    let replicas = [replica(&url).await.1, replica(&url).await.1];
    let config = Arc::new(budget("daily", times(X, 10), BudgetEnforcement::Hard));
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (budgets, config) = (replicas[i % 2].clone(), Arc::clone(&config));
            tokio::spawn(async move {
                // The last room goes to one request at a time: a client retries `Busy`.
                let reservation = loop {
                    match budgets.reserve(&[&*config], X, at(NOW)).await {
                        Ok(reservation) => break reservation,
                        Err(Refusal::Busy { .. }) => tokio::task::yield_now().await,
                        Err(_) => return None,
                    }
                };
                tokio::task::yield_now().await;
                reservation.settle(X);
                Some(())
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        admitted += task.await.unwrap().map_or(0, |()| 1);
    }
    assert_eq!(admitted, 10);
    for budgets in &replicas {
        budgets.drain().await;
    }
    for budgets in &replicas {
        let exceeded = refusal(budgets, &config, at(NOW)).await;
        assert_eq!((exceeded.spent, exceeded.held), (config.limit, NanoUsd(0)));
    }
    assert_eq!(count(&url, "SELECT COUNT(*) FROM budget_holds").await, 0);
}

#[tokio::test]
async fn overspend_is_the_excess_of_the_reservations_in_flight() {
    let url = common::fresh_postgres().await;
    let replicas = [replica(&url).await.1, replica(&url).await.1];
    let config = budget("daily", times(X, 10), BudgetEnforcement::Hard);
    let mut in_flight = Vec::new();
    for i in 0..9 {
        in_flight.push(replicas[i % 2].reserve(&[&config], X, at(NOW)).await.unwrap());
    }
    // The last room (one X) is not given while others hold the budget, on either replica.
    let busy = replicas[1].reserve(&[&config], X, at(NOW)).await.err();
    assert_eq!(busy, Some(Refusal::Busy { budget: "daily".into() }));
    // Three of the nine cost 3X instead of X: the bound is 3 * (3X - X).
    for (i, reservation) in in_flight.into_iter().enumerate() {
        reservation.settle(if i % 3 == 0 { times(X, 3) } else { X });
    }
    for budgets in &replicas {
        budgets.drain().await;
    }
    for budgets in &replicas {
        let exceeded = refusal(budgets, &config, at(NOW)).await;
        assert_eq!((exceeded.spent, exceeded.held), (times(X, 9 + 6), NanoUsd(0)));
    }
}

#[tokio::test]
async fn released_and_expired_holds_do_not_count() {
    let url = common::fresh_postgres().await;
    let (_, budgets) = replica(&url).await;
    let config = budget("daily", times(X, 3), BudgetEnforcement::Hard);
    drop(budgets.reserve(&[&config], times(X, 2), at(NOW)).await.unwrap());
    budgets.drain().await;
    assert_eq!(count(&url, "SELECT COUNT(*) FROM budget_holds").await, 0);
    drop(budgets.reserve(&[&config], times(X, 3), at(NOW)).await.unwrap());
    budgets.drain().await;

    // Holds left by replicas that died: one long expired, one still counting.
    let key = "team-ns/daily";
    let today = today_ms();
    execute(
        &url,
        "INSERT INTO budget_reservations (id, expires_at_ms) VALUES ('dead', 0), ('recent', 9000000000000)",
    )
    .await;
    execute(
        &url,
        &format!(
            "INSERT INTO budget_holds (reservation, budget, period_start_ms, amount_nanos) VALUES \
             ('dead', '{key}', {today}, {}), ('recent', '{key}', {today}, {})",
            times(X, 3).0,
            X.0
        ),
    )
    .await;
    let exceeded = budgets.reserve(&[&config], times(X, 3), at(NOW)).await.err().and_then(exceeded).unwrap();
    assert_eq!((exceeded.spent, exceeded.held), (NanoUsd(0), X));
    budgets.reserve(&[&config], X, at(NOW)).await.unwrap();
}

#[tokio::test]
async fn settle_charges_a_reservation_whose_hold_expired() {
    let url = common::fresh_postgres().await;
    let (_, budgets) = replica(&url).await;
    let config = budget("daily", times(X, 2), BudgetEnforcement::Hard);
    let reservation = budgets.reserve(&[&config], X, at(NOW)).await.unwrap();
    // What another replica's clean-up does to a reservation whose replica stopped refreshing it.
    execute(&url, "DELETE FROM budget_holds").await;
    execute(&url, "DELETE FROM budget_reservations").await;
    reservation.settle(times(X, 2));
    budgets.drain().await;
    assert_eq!(refusal(&budgets, &config, at(NOW)).await.spent, times(X, 2));
}

#[tokio::test]
async fn counters_start_from_the_ledger_spend_of_the_period() {
    let url = common::fresh_postgres().await;
    let (ledger, first) = replica(&url).await;
    let (_, second) = replica(&url).await;
    let today = today_ms();
    ledger
        .insert(&[
            record("in-period", today + 1_000, "team", times(X, 4)),
            record("in-period-2", today + 2_000, "team", times(X, 3)),
            record("yesterday", today - 1, "team", times(X, 100)),
            record("other-tenant", today + 1_000, "other", times(X, 100)),
        ])
        .await
        .unwrap();
    let config = budget("daily", times(X, 10), BudgetEnforcement::Hard);
    for budgets in [&first, &second] {
        let exceeded =
            budgets.reserve(&[&config], times(X, 4), at(NOW)).await.err().and_then(exceeded).unwrap();
        assert_eq!(exceeded.spent, times(X, 7));
    }
    second.reserve(&[&config], times(X, 3), at(NOW)).await.unwrap().settle(times(X, 3));
    second.drain().await;
    // Seeded once: rows written later (this request's own row, here) are not counted twice.
    ledger.insert(&[record("settled", today + 3_000, "team", times(X, 3))]).await.unwrap();
    assert_eq!(refusal(&first, &config, at(NOW)).await.spent, config.limit);
    assert_eq!(count(&url, "SELECT COUNT(*) FROM budget_counters").await, 1);
}

#[tokio::test]
async fn soft_budgets_warn_but_never_refuse() {
    let url = common::fresh_postgres().await;
    let (_, budgets) = replica(&url).await;
    let config = budget("soft", times(X, 10), BudgetEnforcement::Soft);
    let mut seen = Vec::new();
    for _ in 0..12 {
        let reservation = budgets.reserve(&[&config], X, at(NOW)).await.unwrap();
        seen.push(reservation.warnings().iter().map(|w| (w.percent, w.exhausted)).collect::<Vec<_>>());
        reservation.settle(X);
        budgets.drain().await;
    }
    let none = Vec::<(u8, bool)>::new();
    assert_eq!(seen[..7], vec![none; 7]);
    assert_eq!(seen[7], [(80, false)]);
    assert_eq!(seen[9], [(100, true)]);
    assert_eq!(seen[11], [(120, true)]);
    // Soft budgets hold nothing: only hard ones make other reservations wait.
    assert_eq!(count(&url, "SELECT COUNT(*) FROM budget_reservations WHERE settled_at_ms IS NULL").await, 0);
}

#[tokio::test]
async fn a_new_period_starts_from_zero() {
    let url = common::fresh_postgres().await;
    let (_, budgets) = replica(&url).await;
    let config = budget("daily", times(X, 2), BudgetEnforcement::Hard);
    budgets.reserve(&[&config], times(X, 2), at(NOW)).await.unwrap().settle(times(X, 2));
    budgets.drain().await;
    let exceeded = refusal(&budgets, &config, at("2026-11-19T23:59:59Z")).await;
    assert_eq!(exceeded.resets_at, Some(at("2026-11-20T00:00:00Z")));
    let tomorrow = at("2026-11-20T00:00:00Z");
    budgets.reserve(&[&config], times(X, 2), tomorrow).await.unwrap().settle(times(X, 2));
    budgets.drain().await;
    let exceeded = refusal(&budgets, &config, tomorrow).await;
    assert_eq!((exceeded.spent, exceeded.resets_at), (times(X, 2), Some(at("2026-11-21T00:00:00Z"))));
    assert_eq!(count(&url, "SELECT COUNT(*) FROM budget_counters").await, 2);
}

#[tokio::test]
async fn a_failing_store_refuses_hard_budgets_unless_they_fail_open() {
    let url = common::fresh_postgres().await;
    let (_, budgets) = replica(&url).await;
    let closed = budget("daily", X, BudgetEnforcement::Hard);
    execute(&url, "DROP TABLE budget_holds").await;
    let refused = budgets.reserve(&[&closed], X, at(NOW)).await.err();
    assert_eq!(refused, Some(Refusal::Unavailable { budget: "daily".into() }));
    let open =
        BudgetConfig { failure_mode: BudgetFailureMode::Open, ..budget("open", X, BudgetEnforcement::Hard) };
    let soft = budget("soft", X, BudgetEnforcement::Soft);
    let reservation = budgets.reserve(&[&open, &soft], times(X, 5), at(NOW)).await.unwrap();
    assert!(reservation.warnings().is_empty());
}

fn record(id: &str, at_ms: i64, tenant: &str, cost: NanoUsd) -> LedgerRecord {
    LedgerRecord {
        id: id.to_owned(),
        created_at_ms: at_ms,
        tenant: tenant.to_owned(),
        api_key: "ci".to_owned(),
        persona: None,
        model: "fake-model".to_owned(),
        route: "default".to_owned(),
        backend: "fake".to_owned(),
        provider: "openai".to_owned(),
        endpoint: "chat_completions",
        stream: false,
        status: 200,
        error_code: None,
        input_tokens: 1,
        cached_input_tokens: 0,
        cache_write_tokens: 0,
        output_tokens: 1,
        cost_nanos: cost.0,
        latency_ms: 1,
        billed: true,
        ..LedgerRecord::default()
    }
}
