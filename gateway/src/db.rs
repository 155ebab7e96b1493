//! The gateway's database: SQLite by default, PostgreSQL for several replicas. One connection
//! pool, its dialect, the migrations and the clock, shared by the stores kept there (the ledger,
//! shared budget counters, persona memories and moods).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, install_default_drivers};

/// Which SQL the database speaks: placeholders and full-text search differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("unsupported database URL (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// The database; cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct Database {
    pool: AnyPool,
    dialect: Dialect,
}

impl Database {
    /// Connects and applies the migrations for the URL's database.
    pub async fn connect(url: &str) -> Result<Database, DatabaseError> {
        install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            return Err(DatabaseError::UnsupportedUrl);
        };
        // SQLite allows one writer at a time: more connections only add lock contention.
        let max_connections = if dialect == Dialect::Sqlite { 1 } else { 4 };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // WAL lets readers (admin usage, status) run beside the writer; NORMAL
                        // syncs at checkpoints: safe against a process crash, far fewer fsyncs.
                        sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *connection).await?;
                        sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *connection).await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(DatabaseError::Connect)?;
        migrate(&pool, dialect).await?;
        Ok(Database { pool, dialect })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn is_postgres(&self) -> bool {
        self.dialect == Dialect::Postgres
    }
}

/// Applies the portable migrations (`migrations/`), then the dialect's own (`migrations-sqlite/`
/// or `migrations-postgres/`: full-text search differs). Both sets share sqlx's bookkeeping table,
/// so each must ignore the versions that belong to the other.
async fn migrate(pool: &AnyPool, dialect: Dialect) -> Result<(), DatabaseError> {
    let mut portable = sqlx::migrate!("./migrations");
    let mut own = match dialect {
        Dialect::Sqlite => sqlx::migrate!("./migrations-sqlite"),
        Dialect::Postgres => sqlx::migrate!("./migrations-postgres"),
    };
    portable.set_ignore_missing(true).run(pool).await.map_err(DatabaseError::Migrate)?;
    own.set_ignore_missing(true).run(pool).await.map_err(DatabaseError::Migrate)?;
    Ok(())
}

/// A page of at most `limit` rows out of the `limit + 1` a query asked for, newest first, and the
/// cursor to the next page (the last row's id) when there is one more.
pub fn page_of<T>(mut rows: Vec<T>, limit: u32, id: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
    let limit = limit as usize;
    if rows.len() <= limit {
        return (rows, None);
    }
    rows.truncate(limit);
    let next = rows.last().map(id);
    (rows, next)
}

/// `items` in runs whose lengths are powers of two, at most `max`: a multi-row statement then has
/// one of a few shapes, each prepared once and kept in the connection's statement cache, instead
/// of a new text (parsed and planned again) for every batch size.
pub fn shaped_chunks<T>(mut items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if items.is_empty() {
            return None;
        }
        let run = items.len().min(max);
        let run = 1 << run.ilog2();
        let (chunk, rest) = items.split_at(run);
        items = rest;
        Some(chunk)
    })
}

/// Now, in Unix milliseconds: the clock of ledger rows and of the persona stores.
/// The `VALUES` list of a multi-row insert: `(?, ?), (?, ?)` or `($1, $2), ($3, $4)`.
pub fn row_placeholders(dialect: Dialect, rows: usize, columns: usize) -> String {
    let mut sql = String::new();
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            match dialect {
                Dialect::Sqlite => sql.push('?'),
                Dialect::Postgres => sql.push_str(&format!("${}", row * columns + column + 1)),
            }
        }
        sql.push(')');
    }
    sql
}

pub fn now_ms() -> i64 {
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    i64::try_from(millis).unwrap_or(i64::MAX)
}

/// A value bound to a placeholder.
#[derive(Clone, Debug)]
pub enum Bind {
    Text(String),
    Int(i64),
}

/// A `WHERE` clause made of conditions, with the values it binds, in the dialect's placeholders.
#[derive(Debug)]
pub struct Conditions {
    dialect: Dialect,
    parts: Vec<String>,
    binds: Vec<Bind>,
}

impl Conditions {
    pub fn new(dialect: Dialect) -> Conditions {
        Conditions { dialect, parts: Vec::new(), binds: Vec::new() }
    }

    /// Binds `value`; returns its placeholder, to write into SQL.
    pub fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        match self.dialect {
            Dialect::Sqlite => "?".to_owned(),
            Dialect::Postgres => format!("${}", self.binds.len()),
        }
    }

    /// Adds `column op value`.
    pub fn compare(&mut self, column: &str, op: &str, value: Bind) {
        let placeholder = self.bind(value);
        self.parts.push(format!("{column} {op} {placeholder}"));
    }

    /// Adds `column = value` for each filter that is set.
    pub fn equal_where_set(&mut self, filters: &[(&str, &Option<String>)]) {
        for (column, value) in filters {
            if let Some(value) = value {
                self.compare(column, "=", Bind::Text(value.clone()));
            }
        }
    }

    /// Adds a condition written with placeholders from [`Conditions::bind`].
    pub fn push(&mut self, condition: String) {
        self.parts.push(condition);
    }

    /// `WHERE a AND b`, or nothing.
    pub fn clause(&self) -> String {
        if self.parts.is_empty() { String::new() } else { format!("WHERE {}", self.parts.join(" AND ")) }
    }

    /// Binds the values to `sql`'s query, in order.
    pub fn query<'q>(&self, sql: &'q str) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        self.binds.iter().fold(sqlx::query(sql), |query, bind| match bind {
            Bind::Text(text) => query.bind(text.clone()),
            Bind::Int(int) => query.bind(*int),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_powers_of_two_within_the_bound() {
        let items: Vec<u32> = (0..300).collect();
        let sizes: Vec<usize> = shaped_chunks(&items, 256).map(<[u32]>::len).collect();
        assert_eq!(sizes, [256, 32, 8, 4]);
        let sizes: Vec<usize> = shaped_chunks(&items[..7], 4).map(<[u32]>::len).collect();
        assert_eq!(sizes, [4, 2, 1]);
        assert_eq!(shaped_chunks(&items[..0], 4).count(), 0);
        let all: Vec<u32> = shaped_chunks(&items, 64).flatten().copied().collect();
        assert_eq!(all, items);
    }
}
