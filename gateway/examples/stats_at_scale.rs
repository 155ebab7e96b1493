//! `make bench-stats`: fills a database with N synthetic requests through the ledger's own write
//! path (usage ledger, request log and statistics, in batches as the writer makes them), then
//! times the statistics and cost queries a console makes, best of three, answers serialised to
//! JSON as the API does. Prints a markdown table (docs/benchmarks.md).
//!
//!     cargo run --release -p switchboard-gateway --example stats_at_scale -- DATABASE_URL [ROWS]
//!
//! The requests span 7 days up to now: 1,000 tenants whose traffic follows a Zipf law (the
//! busiest sends about 13% of it), each using 3 of 20 models, 5% through one of its personas;
//! 96% served, 2.7% refused (429), 1% failed (502), 0.3% rejected (400); latencies log-normal
//! around 800 ms, 40% streamed with a time to first token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use switchboard_gateway::db::{Database, now_ms};
use switchboard_gateway::ledger::{Ledger, LedgerRecord};
use switchboard_gateway::stats::costs::CostQuery;
use switchboard_gateway::stats::{GroupBy, Resolution, Stats, StatsQuery};

const TENANTS: usize = 1_000;
const MODELS: usize = 20;
const DAYS: i64 = 7;
const BATCH: usize = 2_000;
const HOUR: i64 = 3_600_000;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("usage: stats_at_scale DATABASE_URL [ROWS]");
    let rows: usize = args.next().map_or(10_000_000, |n| n.parse().expect("ROWS must be a number"));
    let db = Database::connect(&url).await.expect("cannot open the database");
    let ledger = Ledger::new(db.clone());
    let now = now_ms();
    let start = now - DAYS * 24 * HOUR;

    // Zipf weights over tenants, as a cumulative table.
    let weights: Vec<f64> = (1..=TENANTS).map(|rank| 1.0 / rank as f64).collect();
    let total: f64 = weights.iter().sum();
    let mut cumulative = Vec::with_capacity(TENANTS);
    let mut sum = 0.0;
    for weight in &weights {
        sum += weight / total;
        cumulative.push(sum);
    }
    let mut rng = SmallRng::seed_from_u64(7);
    let filled = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..rows {
        let at = start + (i as i64) * (now - start) / rows as i64;
        let draw: f64 = rng.random();
        let tenant = cumulative.partition_point(|c| *c < draw).min(TENANTS - 1);
        batch.push(request(&mut rng, at, tenant));
        if batch.len() == BATCH || i + 1 == rows {
            ledger.insert(&batch).await.expect("insert failed");
            batch.clear();
        }
        if (i + 1) % 1_000_000 == 0 {
            eprintln!("{} rows, {:.0} rows/s", i + 1, (i + 1) as f64 / filled.elapsed().as_secs_f64());
        }
    }
    let fill_seconds = filled.elapsed().as_secs_f64();
    let stats = Stats::new(db.clone());
    let stat_rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM request_stats").fetch_one(db.pool()).await.unwrap();

    let stats_query = |since: i64, bucket, group_by, tenant: Option<&str>| StatsQuery {
        tenant: tenant.map(str::to_owned),
        ..StatsQuery::new(since, now, bucket, group_by)
    };
    let queries = [
        (
            "last 24 h, hourly, everything",
            stats_query(now - 24 * HOUR, Resolution::Hour, GroupBy::None, None),
        ),
        (
            "last 24 h, hourly, top 10 tenants",
            stats_query(now - 24 * HOUR, Resolution::Hour, GroupBy::Tenant, None),
        ),
        (
            "last hour, per minute, top 10 models",
            stats_query(now - HOUR, Resolution::Minute, GroupBy::Model, None),
        ),
        (
            "last 6 h, per minute, top 10 tenants",
            stats_query(now - 6 * HOUR, Resolution::Minute, GroupBy::Tenant, None),
        ),
        ("7 days, hourly, top 10 models", stats_query(start, Resolution::Hour, GroupBy::Model, None)),
        ("7 days, daily, top 10 tenants", stats_query(start, Resolution::Day, GroupBy::Tenant, None)),
        (
            "7 days, hourly, the busiest tenant by model",
            stats_query(start, Resolution::Hour, GroupBy::Model, Some("tenant-0")),
        ),
        (
            "7 days, hourly, a small tenant by model",
            stats_query(start, Resolution::Hour, GroupBy::Model, Some("tenant-500")),
        ),
    ];
    println!("| query | series | points | answer | time |");
    println!("|---|---:|---:|---:|---:|");
    for (name, query) in &queries {
        let (best, (series, bytes)) = best_of_three(|| async {
            let series = stats.series(query).await.unwrap();
            let bytes = serde_json::to_vec(&series).unwrap().len();
            (series, bytes)
        })
        .await;
        let points: usize = series.iter().map(|s| s.points.len()).sum();
        println!("| {name} | {} | {points} | {} KiB | {best:.1} ms |", series.len(), bytes / 1024);
    }
    let cost_queries = [
        ("costs, 7 days, every tenant", CostQuery { since_ms: start, until_ms: now, ..CostQuery::default() }),
        (
            "costs, 7 days, one tenant",
            CostQuery {
                since_ms: start,
                until_ms: now,
                tenant: Some("tenant-3".into()),
                ..CostQuery::default()
            },
        ),
    ];
    for (name, query) in &cost_queries {
        let (best, (rows, bytes)) = best_of_three(|| async {
            let rows = stats.costs(query).await.unwrap();
            let bytes = rows.iter().map(|r| r.csv().len()).sum::<usize>();
            (rows.len(), bytes)
        })
        .await;
        println!("| {name} (CSV) | | {rows} rows | {} KiB | {best:.1} ms |", bytes / 1024);
    }
    println!();
    println!(
        "{rows} requests written in {fill_seconds:.0} s ({:.0} rows/s, batches of {BATCH}); {stat_rows} statistics rows.",
        rows as f64 / fill_seconds
    );
}

fn request(rng: &mut SmallRng, at: i64, tenant: usize) -> LedgerRecord {
    let model = (tenant * 7 + rng.random_range(0..3)) % MODELS;
    let roll: f64 = rng.random();
    let status = match roll {
        r if r < 0.027 => 429,
        r if r < 0.037 => 502,
        r if r < 0.040 => 400,
        _ => 200,
    };
    // Log-normal around 800 ms: exp of a normal drawn as the sum of uniforms.
    let normal: f64 = (0..6).map(|_| rng.random::<f64>()).sum::<f64>() - 3.0;
    let latency = (800.0 * (normal * 0.8).exp()) as u64;
    let streamed = rng.random_bool(0.4);
    let billed = status != 429;
    let (input, output) =
        if billed { (rng.random_range(50..4_000), rng.random_range(10..800)) } else { (0, 0) };
    LedgerRecord {
        // A UUIDv7 of the request's own time, as the gateway makes them.
        id: uuid::Builder::from_unix_timestamp_millis(u64::try_from(at).unwrap_or(0), &rng.random())
            .into_uuid()
            .to_string(),
        created_at_ms: at,
        tenant: format!("tenant-{tenant}"),
        api_key: "default".into(),
        persona: rng.random_bool(0.05).then(|| format!("persona-{}", tenant % 10)),
        model: format!("model-{model}"),
        route: format!("route-{model}"),
        backend: "primary".into(),
        provider: "openai".into(),
        endpoint: "chat_completions",
        stream: streamed,
        status,
        error_code: match status {
            429 => Some("budget_exceeded".into()),
            502 => Some("upstream_error".into()),
            400 => Some("invalid_request".into()),
            _ => None,
        },
        input_tokens: input,
        output_tokens: output,
        cost_nanos: i64::try_from(input * 150 + output * 600).unwrap_or(0),
        latency_ms: latency,
        ttft_ms: (streamed && billed).then_some(latency / 4),
        billed,
        ..LedgerRecord::default()
    }
}

/// The best wall time of three runs, in ms, and the last run's result.
async fn best_of_three<F, Fut, T>(mut run: F) -> (f64, T)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..3 {
        let started = Instant::now();
        let result = run().await;
        best = best.min(started.elapsed().as_secs_f64() * 1e3);
        last = Some(result);
    }
    (best, last.unwrap())
}
