//! The in-process store against a SQLite ledger; `tests/budget_postgres.rs` runs the same
//! contract against the shared store.

use std::sync::Arc;
use std::time::SystemTime;

use k8s_openapi::jiff::Timestamp;
use switchboard_crds::config::BudgetConfig;
use switchboard_crds::decimal::NanoUsd;
use switchboard_crds::resources::{BudgetEnforcement, BudgetFailureMode, BudgetPeriod, BudgetScopeKind};

use super::*;
use crate::ledger::LedgerRecord;

/// One reservation's worth.
const X: NanoUsd = NanoUsd(1_000_000);

async fn ledger() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("ledger.db").display());
    (dir, Ledger::new(crate::db::Database::connect(&url).await.unwrap()))
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

const NOW: &str = "2026-11-19T15:30:00Z";

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

#[tokio::test]
async fn a_hard_budget_whose_spend_cannot_be_read_fails_closed_unless_it_says_open() {
    let (dir, ledger) = ledger().await;
    // The ledger's table gone: every seed query fails, as with a database that is down.
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::query("DROP TABLE usage_ledger").execute(&pool).await.unwrap();
    let budgets = Budgets::local(ledger);
    let closed = budget("closed", times(X, 10), BudgetEnforcement::Hard);
    let refused = budgets.reserve(&[&closed], X, at(NOW)).await.err();
    assert_eq!(refused, Some(Refusal::Unavailable { budget: "closed".into() }));

    let open = BudgetConfig {
        failure_mode: BudgetFailureMode::Open,
        ..budget("open", times(X, 10), BudgetEnforcement::Hard)
    };
    let soft = budget("soft", times(X, 10), BudgetEnforcement::Soft);
    assert!(budgets.reserve(&[&open, &soft], X, at(NOW)).await.is_ok());
    // One closed budget among others refuses the whole reservation.
    assert!(budgets.reserve(&[&open, &closed], X, at(NOW)).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_admit_exactly_the_limit() {
    let (_dir, ledger) = ledger().await;
    let budgets = Budgets::local(ledger);
    let config = Arc::new(budget("daily", times(X, 10), BudgetEnforcement::Hard));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (budgets, config) = (budgets.clone(), Arc::clone(&config));
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
    let exceeded = refusal(&budgets, &config, at(NOW)).await;
    assert_eq!((exceeded.spent, exceeded.held), (config.limit, NanoUsd(0)));
}

#[tokio::test]
async fn overspend_is_the_excess_of_the_reservations_in_flight() {
    let (_dir, ledger) = ledger().await;
    let budgets = Budgets::local(ledger);
    let config = budget("daily", times(X, 10), BudgetEnforcement::Hard);
    let mut in_flight = Vec::new();
    for _ in 0..9 {
        in_flight.push(budgets.reserve(&[&config], X, at(NOW)).await.unwrap());
    }
    // The last room (one X) is not given while others hold the budget.
    let busy = budgets.reserve(&[&config], X, at(NOW)).await.err();
    assert_eq!(busy, Some(Refusal::Busy { budget: "daily".into() }));
    // Three of the nine cost 3X instead of X: the bound is 3 * (3X - X).
    let mut excess = NanoUsd(0);
    for (i, reservation) in in_flight.into_iter().enumerate() {
        let actual = if i % 3 == 0 { times(X, 3) } else { X };
        excess = excess + NanoUsd(actual.0 - X.0);
        reservation.settle(actual);
    }
    assert_eq!(excess, times(X, 6));
    let exceeded = refusal(&budgets, &config, at(NOW)).await;
    assert_eq!(exceeded.spent, times(X, 9) + excess);
    assert!(exceeded.spent.0 - config.limit.0 <= excess.0, "spent - limit <= the excess in flight");
    assert_eq!(exceeded.held, NanoUsd(0));

    // Excess settled before an admission is counted by it: nothing more is admitted.
    let config = budget("other", times(X, 10), BudgetEnforcement::Hard);
    for _ in 0..5 {
        budgets.reserve(&[&config], X, at(NOW)).await.unwrap().settle(times(X, 2));
    }
    assert_eq!(refusal(&budgets, &config, at(NOW)).await.spent, config.limit);
}

#[tokio::test]
async fn dropped_reservations_release_their_hold() {
    let (_dir, ledger) = ledger().await;
    let budgets = Budgets::local(ledger);
    let config = budget("daily", times(X, 2), BudgetEnforcement::Hard);
    let first = budgets.reserve(&[&config], X, at(NOW)).await.unwrap();
    let more = budgets.reserve(&[&config], times(X, 2), at(NOW)).await.err().and_then(exceeded).unwrap();
    assert_eq!(more.held, X);
    drop(first);
    let second = budgets.reserve(&[&config], X, at(NOW)).await.unwrap();
    drop(second);
    let exceeded = budgets.reserve(&[&config], times(X, 3), at(NOW)).await.err().and_then(exceeded).unwrap();
    assert_eq!((exceeded.spent, exceeded.held), (NanoUsd(0), NanoUsd(0)));
    budgets.reserve(&[&config], times(X, 2), at(NOW)).await.unwrap();
}

#[tokio::test]
async fn reservations_are_all_or_nothing() {
    let (_dir, ledger) = ledger().await;
    let budgets = Budgets::local(ledger);
    let roomy = budget("roomy", times(X, 10), BudgetEnforcement::Hard);
    let tight = budget("tight", X, BudgetEnforcement::Hard);
    let refused =
        budgets.reserve(&[&roomy, &tight], times(X, 2), at(NOW)).await.err().and_then(exceeded).unwrap();
    assert_eq!(refused.budget, "tight");
    assert_eq!(refused.resets_at, Some(at("2026-11-20T00:00:00Z")));
    // The refusal held nothing on the budget that had room.
    assert_eq!(
        budgets.reserve(&[&roomy], times(X, 11), at(NOW)).await.err().and_then(exceeded).unwrap().held,
        NanoUsd(0)
    );
    // The same budget listed twice holds once.
    let both = budgets.reserve(&[&tight, &tight], X, at(NOW)).await.unwrap();
    assert_eq!(refusal(&budgets, &tight, at(NOW)).await.held, X);
    drop(both);
}

#[tokio::test]
async fn counters_start_from_the_ledger_spend_of_the_period() {
    let (_dir, ledger) = ledger().await;
    let today = at("2026-11-19T00:00:00Z").duration_since(SystemTime::UNIX_EPOCH).unwrap();
    let today_ms = i64::try_from(today.as_millis()).unwrap();
    ledger
        .insert(&[
            record("in-period", today_ms + 1_000, "team", times(X, 4)),
            record("in-period-2", today_ms + 2_000, "team", times(X, 3)),
            record("yesterday", today_ms - 1, "team", times(X, 100)),
            record("other-tenant", today_ms + 1_000, "other", times(X, 100)),
        ])
        .await
        .unwrap();
    let budgets = Budgets::local(ledger.clone());
    let config = budget("daily", times(X, 10), BudgetEnforcement::Hard);
    let exceeded = budgets.reserve(&[&config], times(X, 4), at(NOW)).await.err().and_then(exceeded).unwrap();
    assert_eq!(exceeded.spent, times(X, 7));
    budgets.reserve(&[&config], times(X, 3), at(NOW)).await.unwrap().settle(times(X, 3));
    // Seeded once: rows written later (this request's own row, here) are not counted twice.
    ledger.insert(&[record("settled", today_ms + 3_000, "team", times(X, 3))]).await.unwrap();
    assert_eq!(refusal(&budgets, &config, at(NOW)).await.spent, config.limit);
}

#[tokio::test]
async fn soft_budgets_warn_but_never_refuse() {
    let (_dir, ledger) = ledger().await;
    let budgets = Budgets::local(ledger);
    let config = budget("soft", times(X, 10), BudgetEnforcement::Soft);
    let mut seen = Vec::new();
    for _ in 0..12 {
        let reservation = budgets.reserve(&[&config], X, at(NOW)).await.unwrap();
        seen.push(reservation.warnings().iter().map(|w| (w.percent, w.exhausted)).collect::<Vec<_>>());
        reservation.settle(X);
    }
    let none = Vec::<(u8, bool)>::new();
    assert_eq!(seen[..7], vec![none; 7]);
    assert_eq!(seen[7], [(80, false)]);
    assert_eq!(seen[8], [(90, false)]);
    assert_eq!(seen[9], [(100, true)]);
    assert_eq!(seen[11], [(120, true)]);
    // A hard budget warns too, with the name of the budget.
    let hard = budget("hard", times(X, 10), BudgetEnforcement::Hard);
    let reservation = budgets.reserve(&[&config, &hard], times(X, 8), at(NOW)).await.unwrap();
    let names: Vec<&str> = reservation.warnings().iter().map(|w| w.budget.as_str()).collect();
    assert_eq!(names, ["soft", "hard"]);
}

#[tokio::test]
async fn a_new_period_starts_from_zero() {
    let (_dir, ledger) = ledger().await;
    let budgets = Budgets::local(ledger);
    let mut config = budget("daily", times(X, 2), BudgetEnforcement::Hard);
    for _ in 0..2 {
        budgets.reserve(&[&config], X, at(NOW)).await.unwrap().settle(X);
    }
    let exceeded = refusal(&budgets, &config, at("2026-11-19T23:59:59Z")).await;
    assert_eq!(exceeded.resets_at, Some(at("2026-11-20T00:00:00Z")));
    // A reservation admitted yesterday and settled today is charged to yesterday.
    let late = {
        let mut config = config.clone();
        config.limit = times(X, 3);
        budgets.reserve(&[&config], X, at("2026-11-19T23:59:59Z")).await.unwrap()
    };
    let tomorrow = at("2026-11-20T00:00:00Z");
    budgets.reserve(&[&config], times(X, 2), tomorrow).await.unwrap().settle(times(X, 2));
    late.settle(X);
    assert_eq!(refusal(&budgets, &config, tomorrow).await.spent, times(X, 2));
    // Total never resets.
    config.period = BudgetPeriod::Total;
    config.name = "total".to_owned();
    budgets.reserve(&[&config], times(X, 2), at(NOW)).await.unwrap().settle(times(X, 2));
    let exceeded = refusal(&budgets, &config, at("2036-01-01T00:00:00Z")).await;
    assert_eq!((exceeded.spent, exceeded.resets_at), (times(X, 2), None));
}

#[tokio::test]
async fn shared_budgets_need_postgres() {
    let (_dir, ledger) = ledger().await;
    assert!(matches!(Budgets::shared(ledger).await, Err(BudgetError::NotPostgres)));
}
