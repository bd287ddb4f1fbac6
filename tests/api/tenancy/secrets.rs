//! Exploit 9, the smaller leaks: a database URL's secrets in logs and `workhorse config`, and
//! the embedded PostgreSQL's socket directory open to other local users.

use std::os::unix::fs::PermissionsExt;

use workhorse::config::redact_url;
use workhorse::store::embedded::EmbeddedPostgres;

#[test]
fn redact_url_hides_the_password_and_password_parameters() {
    let redacted = redact_url("postgres://u:secret@h/db?password=secret2");

    // Regression: a password given as a query parameter was printed as it was.
    assert!(!redacted.contains("secret"), "{redacted}");
    assert!(redacted.starts_with("postgres://u:"), "{redacted}");
    assert!(redacted.contains("@h/db"), "{redacted}");
}

#[tokio::test]
async fn the_embedded_postgres_socket_directory_is_private() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut pg = EmbeddedPostgres::start(data_dir.path(), None)
        .await
        .expect("the embedded PostgreSQL starts");
    let mode = |dir: &str| {
        let meta = std::fs::metadata(data_dir.path().join(dir)).expect("the directory exists");
        meta.permissions().mode() & 0o777
    };
    let (run_dir, cluster_dir) = (mode("postgres-run"), mode("postgres"));
    pg.stop().await.expect("the embedded PostgreSQL stops");

    // Regression: the socket directory took the umask's mode (0755 under umask 022), so any
    // local user could connect as the cluster's superuser.
    assert_eq!(run_dir, 0o700, "postgres-run is {run_dir:o}");
    assert_eq!(cluster_dir, 0o700, "postgres is {cluster_dir:o}");
}
