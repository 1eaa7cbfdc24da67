//! tenure's tables and functions in PostgreSQL: the versioned DDL and its
//! idempotent installation.
//!
//! The DDL (`schema.sql`) is written once per schema name: the schema, the
//! notification channel and the transaction-local setting are spliced in
//! as identifiers and literals (the name is checked to be lower-case
//! letters, digits and `_`, so it needs no escaping).

use tenure_core::{Error, Result};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient};

use crate::error;

/// The layout version this crate writes and understands.
pub const SCHEMA_VERSION: i32 = 1;

/// The oldest server this backend runs on (`EXECUTE FUNCTION` triggers,
/// `hashtextextended`): PostgreSQL 11.
const MIN_SERVER_VERSION: i32 = 110_000;

const DDL: &str = include_str!("schema.sql");

/// The names derived from a schema name.
#[derive(Clone, Debug)]
pub(crate) struct Names {
    /// The schema as a quoted identifier.
    pub(crate) schema: String,
    /// The LISTEN/NOTIFY channel of the schema (unquoted).
    pub(crate) channel: String,
}

impl Names {
    pub(crate) fn new(schema: &str) -> Names {
        Names {
            schema: format!("\"{schema}\""),
            channel: format!("tenure_{schema}"),
        }
    }

    /// `"schema".object`.
    pub(crate) fn object(&self, object: &str) -> String {
        format!("{}.{object}", self.schema)
    }
}

/// The DDL for `schema`.
pub fn ddl(schema: &str) -> String {
    let names = Names::new(schema);
    DDL.replace("@S@", &names.schema)
        .replace("@CHANNEL@", &format!("'{}'", names.channel))
        .replace("@GUC@", &format!("'tenure.revision_{schema}'"))
}

/// Makes sure `schema` holds tenure's tables at [`SCHEMA_VERSION`],
/// creating them when absent and `create` allows it. When they exist
/// (the common case) this takes no lock; concurrent first users
/// serialize on an advisory lock, so exactly one creates them.
///
/// # Errors
/// [`Error::InvalidConfig`] for a standby, a server older than 11, a
/// schema of another version, or a missing schema with `create` off;
/// [`Error::Unauthenticated`] when the role may not create it; driver
/// errors.
pub(crate) async fn install(
    client: &mut Client,
    schema: &str,
    create: bool,
    endpoint: &str,
) -> Result<()> {
    let map = |e| error::map("install schema", endpoint, e);
    let row = client
        .query_typed_one(
            "SELECT current_setting('server_version_num')::int, pg_is_in_recovery()",
            &[],
        )
        .await
        .map_err(map)?;
    let version: i32 = row.try_get(0).map_err(map)?;
    let standby: bool = row.try_get(1).map_err(map)?;
    if version < MIN_SERVER_VERSION {
        return Err(Error::InvalidConfig {
            field: "host",
            reason: format!("PostgreSQL {version} is too old: tenure needs 11 or newer"),
        });
    }
    if standby {
        return Err(Error::InvalidConfig {
            field: "host",
            reason: format!(
                "{endpoint} is a standby (in recovery): tenure needs the primary; add \
                 target_session_attrs=read-write to the URL when it lists several hosts"
            ),
        });
    }
    let names = Names::new(schema);
    let meta = names.object("meta");
    // The common case, without a lock: the schema is there already (a
    // hundred candidates starting at once must not queue on the lock).
    if present(client, &meta, endpoint).await? {
        return check_version(client, schema, &meta, endpoint).await;
    }
    let txn = client.transaction().await.map_err(map)?;
    let lock_key = format!("tenure schema {schema}");
    txn.query_typed(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[(&lock_key, Type::TEXT)],
    )
    .await
    .map_err(map)?;
    // Again under the lock: another client may have just created it.
    if present(&txn, &meta, endpoint).await? {
        check_version(&txn, schema, &meta, endpoint).await?;
    } else if create {
        txn.batch_execute(&ddl(schema)).await.map_err(map)?;
        tracing::info!(%schema, version = SCHEMA_VERSION, "created tenure's schema");
    } else {
        return Err(Error::InvalidConfig {
            field: "schema",
            reason: format!(
                "schema {schema:?} has no tenure tables and create_schema is off: let a role \
                 that may create them connect once, or run the DDL from docs/backends/postgres.md"
            ),
        });
    }
    txn.commit().await.map_err(map)
}

/// Whether `meta` (the schema's version table) exists.
async fn present(client: &impl GenericClient, meta: &str, endpoint: &str) -> Result<bool> {
    let map = |e| error::map("install schema", endpoint, e);
    client
        .query_typed_one("SELECT to_regclass($1) IS NOT NULL", &[(&meta, Type::TEXT)])
        .await
        .map_err(map)?
        .try_get(0)
        .map_err(map)
}

/// Fails unless the schema's layout is [`SCHEMA_VERSION`].
async fn check_version(
    client: &impl GenericClient,
    schema: &str,
    meta: &str,
    endpoint: &str,
) -> Result<()> {
    let map = |e| error::map("install schema", endpoint, e);
    let found: i32 = client
        .query_typed_one(&format!("SELECT version FROM {meta}"), &[])
        .await
        .map_err(map)?
        .try_get(0)
        .map_err(map)?;
    if found != SCHEMA_VERSION {
        return Err(Error::InvalidConfig {
            field: "schema",
            reason: format!(
                "schema {schema:?} holds tenure's layout version {found}, this tenure \
                 uses version {SCHEMA_VERSION}: use another schema or a matching tenure"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_names_only_the_given_schema() {
        let sql = ddl("app_x");
        assert!(!sql.contains('@'), "a placeholder is left");
        assert!(sql.contains("CREATE TABLE \"app_x\".entries"));
        assert!(sql.contains("'tenure_app_x'"));
        assert!(sql.contains("'tenure.revision_app_x'"));
    }
}
