//! `Store::import_from` between every pair of backends, each case on fresh, empty stores:
//! SQLite in memory and in files, PostgreSQL (each store its own schema; skipped, saying so,
//! without `GATEHOUSE_TEST_POSTGRES_URL`).

/// One module per (source, target) pair, with one `#[tokio::test]` per listed case.
macro_rules! pairs {
    ($( $pair:ident: $from:expr => $to:expr => [$($case:ident),+]; )+) => {$(
        mod $pair {
            $(
                #[tokio::test]
                async fn $case() -> Result<(), gatehouse_store::StoreError> {
                    let label = concat!(stringify!($pair), "_", stringify!($case));
                    let Some((source, _source_guard)) = $from(label).await? else {
                        return Ok(());
                    };
                    let Some((target, _target_guard)) = $to(label).await? else {
                        return Ok(());
                    };
                    crate::suite::$case(&*source, &*target).await
                }
            )+
        }
    )+};
}

async fn memory(
    _label: &str,
) -> Result<Option<(std::sync::Arc<dyn gatehouse_store::Store>, ())>, gatehouse_store::StoreError> {
    crate::sqlite_memory().await
}

pairs! {
    sqlite_memory_to_sqlite_memory: crate::copy::memory => crate::copy::memory =>
        [copy_round_trips, copy_refuses_a_non_empty_target];
    sqlite_memory_to_sqlite_file: crate::copy::memory => crate::sqlite_file =>
        [copy_pages_a_large_audit_trail];
    sqlite_file_to_sqlite_file: crate::sqlite_file => crate::sqlite_file =>
        [copy_round_trips];
    sqlite_file_to_postgresql: crate::sqlite_file => crate::postgres::fresh =>
        [copy_round_trips, copy_refuses_a_non_empty_target, copy_pages_a_large_audit_trail];
    postgresql_to_sqlite_file: crate::postgres::fresh => crate::sqlite_file =>
        [copy_round_trips, copy_refuses_a_non_empty_target];
    postgresql_to_postgresql: crate::postgres::fresh => crate::postgres::fresh =>
        [copy_round_trips];
}
