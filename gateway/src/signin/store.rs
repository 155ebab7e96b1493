//! Sign-ins under way and sessions, in the gateway's database, so that any replica can finish a
//! sign-in another began and serve a session another opened.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::db::{Bind, Conditions, Database, now_ms};

/// A person signed in: who the identity provider says they are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub subject: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub issuer: String,
}

impl Person {
    /// The name used for roles and audit rows: the e-mail address, else the subject.
    pub fn name(&self) -> &str {
        self.email.as_deref().unwrap_or(&self.subject)
    }
}

/// What a sign-in keeps between leaving for the identity provider and coming back.
pub struct Pending {
    pub verifier: String,
    pub nonce: String,
    pub return_to: String,
}

#[derive(Clone)]
pub struct Store {
    db: Database,
}

fn hashed(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

impl Store {
    pub fn new(db: Database) -> Store {
        Store { db }
    }

    pub async fn begin(&self, state: &str, pending: &Pending, expires_at_ms: i64) -> Result<(), sqlx::Error> {
        let values = [
            Bind::Text(state.to_owned()),
            Bind::Text(pending.verifier.clone()),
            Bind::Text(pending.nonce.clone()),
            Bind::Text(pending.return_to.clone()),
            Bind::Int(expires_at_ms),
        ];
        self.insert("sign_in_pending (state, verifier, nonce, return_to, expires_at_ms)", values).await?;
        // Sign-ins never finished are forgotten as others begin.
        self.delete("sign_in_pending", "expires_at_ms", "<", Bind::Int(now_ms())).await.map(|_| ())
    }

    /// The sign-in `state` began, once: it is deleted as it is read.
    pub async fn finish(&self, state: &str) -> Result<Option<Pending>, sqlx::Error> {
        let mut c = Conditions::new(self.db.dialect());
        c.compare("state", "=", Bind::Text(state.to_owned()));
        c.compare("expires_at_ms", ">=", Bind::Int(now_ms()));
        let sql = format!("SELECT verifier, nonce, return_to FROM sign_in_pending {}", c.clause());
        let row = c.query(&sql).fetch_optional(self.db.pool()).await?;
        let deleted = self.delete("sign_in_pending", "state", "=", Bind::Text(state.to_owned())).await?;
        match row {
            Some(row) if deleted == 1 => Ok(Some(Pending {
                verifier: row.try_get("verifier")?,
                nonce: row.try_get("nonce")?,
                return_to: row.try_get("return_to")?,
            })),
            _ => Ok(None),
        }
    }

    pub async fn open(&self, id: &str, person: &Person, expires_at_ms: i64) -> Result<(), sqlx::Error> {
        let groups = serde_json::to_string(&person.groups).unwrap_or_else(|_| "[]".into());
        let values = [
            Bind::Text(hashed(id)),
            Bind::Text(person.subject.clone()),
            Bind::Text(person.email.clone().unwrap_or_default()),
            Bind::Text(groups),
            Bind::Text(person.issuer.clone()),
            Bind::Int(now_ms()),
            Bind::Int(expires_at_ms),
        ];
        let into =
            "sign_in_sessions (id_sha256, subject, email, groups_json, issuer, created_at_ms, expires_at_ms)";
        self.insert(into, values).await?;
        // Expired sessions are forgotten as new ones open.
        self.delete("sign_in_sessions", "expires_at_ms", "<", Bind::Int(now_ms())).await.map(|_| ())
    }

    /// The person of an unexpired session.
    pub async fn person(&self, id: &str) -> Result<Option<Person>, sqlx::Error> {
        let mut c = Conditions::new(self.db.dialect());
        c.compare("id_sha256", "=", Bind::Text(hashed(id)));
        c.compare("expires_at_ms", ">=", Bind::Int(now_ms()));
        let sql = format!("SELECT subject, email, groups_json, issuer FROM sign_in_sessions {}", c.clause());
        let Some(row) = c.query(&sql).fetch_optional(self.db.pool()).await? else { return Ok(None) };
        let email: String = row.try_get("email")?;
        let groups: String = row.try_get("groups_json")?;
        Ok(Some(Person {
            subject: row.try_get("subject")?,
            email: (!email.is_empty()).then_some(email),
            groups: serde_json::from_str(&groups).unwrap_or_default(),
            issuer: row.try_get("issuer")?,
        }))
    }

    pub async fn close(&self, id: &str) -> Result<(), sqlx::Error> {
        self.delete("sign_in_sessions", "id_sha256", "=", Bind::Text(hashed(id))).await.map(|_| ())
    }

    /// `INSERT INTO <into> VALUES (values...)`.
    async fn insert<const N: usize>(&self, into: &str, values: [Bind; N]) -> Result<(), sqlx::Error> {
        let mut c = Conditions::new(self.db.dialect());
        let placeholders: Vec<String> = values.into_iter().map(|value| c.bind(value)).collect();
        let sql = format!("INSERT INTO {into} VALUES ({})", placeholders.join(", "));
        c.query(&sql).execute(self.db.pool()).await.map(|_| ())
    }

    /// `DELETE FROM <table> WHERE <column> <op> value`; how many rows went.
    async fn delete(&self, table: &str, column: &str, op: &str, value: Bind) -> Result<u64, sqlx::Error> {
        let mut c = Conditions::new(self.db.dialect());
        c.compare(column, op, value);
        let sql = format!("DELETE FROM {table} {}", c.clause());
        Ok(c.query(&sql).execute(self.db.pool()).await?.rows_affected())
    }
}
