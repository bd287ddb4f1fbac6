//! Unit tests for the egress policy: URL checks, the allowlist and name resolution.

use std::net::{IpAddr, SocketAddr};

use super::{EgressError, EgressPolicy};

fn policy(allow: &[&str]) -> EgressPolicy {
    let allow: Vec<String> = allow.iter().map(|entry| (*entry).to_owned()).collect();
    EgressPolicy::new(&allow).expect("a valid allowlist")
}

fn reason_of(result: Result<url::Url, EgressError>) -> &'static str {
    match result {
        Err(EgressError::Blocked { reason, .. }) => reason,
        other => panic!("expected a blocked address, got {other:?}"),
    }
}

#[test]
fn new_names_the_entry_it_cannot_read() {
    for bad in [
        "10.0.0.0/33",
        "exa mple.com",
        "*",
        "*.",
        "",
        "example.com:8080",
        "127.1",
    ] {
        let err = EgressPolicy::new(&[bad.to_owned()]).expect_err(bad);

        assert!(err.contains(&format!("{bad:?}")), "{err}");
    }
}

#[test]
fn check_url_refuses_schemes_other_than_http_and_https() {
    let policy = policy(&[]);

    for url in [
        "ftp://example.com/",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "gopher://x/",
    ] {
        let err = policy.check_url(url).expect_err(url);

        assert!(
            matches!(err, EgressError::ForbiddenScheme { .. }),
            "{url}: {err:?}"
        );
        assert!(err.is_refusal());
    }
}

#[test]
fn check_url_refuses_what_is_not_a_url() {
    let policy = policy(&[]);

    for url in ["not a url", "http://", "/relative/path"] {
        let err = policy.check_url(url).expect_err(url);

        assert!(matches!(err, EgressError::BadUrl { .. }), "{url}: {err:?}");
        assert!(!err.is_refusal());
    }
}

#[test]
fn check_url_refuses_a_private_address_with_a_message_a_user_can_act_on() {
    let err = policy(&[])
        .check_url("http://10.0.0.5/")
        .expect_err("private");

    assert_eq!(
        err.to_string(),
        "http://10.0.0.5/ is refused: 10.0.0.5 is a private address; \
         an operator can allow it with egress.allow"
    );
}

#[test]
fn check_url_refuses_loopback_however_it_is_spelled() {
    let policy = policy(&[]);

    for url in [
        "http://127.0.0.1:8080/",
        "http://0x7f000001/",
        "http://2130706433/",
        "http://127.1/",
        "https://[::1]/",
        "http://[::ffff:7f00:1]/",
    ] {
        assert_eq!(
            reason_of(policy.check_url(url)),
            "a loopback address",
            "{url}"
        );
    }
}

#[test]
fn check_url_refuses_the_metadata_addresses() {
    let policy = policy(&[]);

    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
    ] {
        assert_eq!(
            reason_of(policy.check_url(url)),
            "the cloud metadata address",
            "{url}"
        );
    }
}

#[test]
fn check_url_accepts_public_names_and_addresses() {
    let policy = policy(&[]);

    for url in [
        "https://example.com/a?b=c",
        "http://93.184.216.34/",
        "https://[2606:4700::1]/",
    ] {
        assert!(policy.check_url(url).is_ok(), "{url}");
    }
}

#[test]
fn allowlisted_host_names_match_exactly_ignoring_case_and_a_trailing_dot() {
    let policy = policy(&["Example.COM"]);

    assert!(policy.is_allowed_host("example.com"));
    assert!(policy.is_allowed_host("EXAMPLE.com."));
    assert!(!policy.is_allowed_host("www.example.com"));
    assert!(!policy.is_allowed_host("badexample.com"));
}

#[test]
fn wildcards_match_subdomains_only() {
    let policy = policy(&["*.example.com"]);

    assert!(policy.is_allowed_host("a.example.com"));
    assert!(policy.is_allowed_host("a.b.example.com"));
    assert!(!policy.is_allowed_host("example.com"));
    assert!(!policy.is_allowed_host("badexample.com"));
}

#[test]
fn an_allowlisted_ip_lets_that_address_through_and_no_other() {
    let policy = policy(&["127.0.0.1", "[fd00::1]"]);

    assert!(policy.check_url("http://127.0.0.1:8080/").is_ok());
    assert!(policy.check_url("http://[fd00::1]/").is_ok());
    assert_eq!(
        reason_of(policy.check_url("http://127.0.0.2/")),
        "a loopback address"
    );
}

#[test]
fn an_allowlisted_cidr_lets_its_addresses_through() {
    let policy = policy(&["10.0.0.0/8", "fd00::/8"]);

    assert!(policy.check_url("http://10.1.2.3/").is_ok());
    assert!(policy.check_url("http://[fd12::1]/").is_ok());
    assert_eq!(
        reason_of(policy.check_url("http://192.168.0.1/")),
        "a private address"
    );
    assert_eq!(
        reason_of(policy.check_url("http://[fc00::1]/")),
        "a unique-local address"
    );
}

#[test]
fn an_ipv4_mapped_address_is_judged_and_allowed_by_its_ipv4_address() {
    let url = "http://[::ffff:127.0.0.1]/";

    assert_eq!(reason_of(policy(&[]).check_url(url)), "a loopback address");
    assert!(policy(&["127.0.0.1"]).check_url(url).is_ok());
}

#[tokio::test]
async fn resolve_returns_an_ip_literal_with_the_default_port() {
    let policy = policy(&[]);
    let url = policy.check_url("https://93.184.216.34/").expect("public");

    let addrs = policy.resolve(&url).await.expect("resolves");

    assert_eq!(addrs, vec![SocketAddr::from(([93, 184, 216, 34], 443))]);
}

#[tokio::test]
async fn resolve_refuses_a_name_that_resolves_to_loopback() {
    let policy = policy(&[]);
    let url = policy
        .check_url("http://localhost:8080/")
        .expect("a name passes the static check");

    let err = policy.resolve(&url).await.expect_err("loopback");

    match &err {
        EgressError::Blocked {
            host, ip, reason, ..
        } => {
            assert_eq!(host, "localhost");
            assert!(ip.is_loopback(), "{ip}");
            assert_eq!(*reason, "a loopback address");
        }
        other => panic!("expected a blocked address, got {other:?}"),
    }
    assert!(err.to_string().contains("localhost resolves to"), "{err}");
}

#[tokio::test]
async fn resolve_lets_an_allowlisted_name_through_to_its_addresses() {
    let policy = policy(&["localhost"]);
    let url = policy.check_url("http://localhost:8080/").expect("allowed");

    let addrs = policy.resolve(&url).await.expect("resolves");

    assert!(
        addrs
            .iter()
            .all(|addr| addr.ip().is_loopback() && addr.port() == 8080)
    );
}

#[tokio::test]
async fn resolve_lets_a_name_through_when_cidrs_allow_all_its_addresses() {
    let policy = policy(&["127.0.0.0/8", "::1"]);
    let url = policy.check_url("http://localhost/").expect("a name");

    assert!(policy.resolve(&url).await.is_ok());
}

#[tokio::test]
async fn resolve_reports_a_name_that_does_not_resolve() {
    let policy = policy(&[]);
    let url = policy
        .check_url("http://no-such-host.invalid/")
        .expect("a name");

    let err = policy.resolve(&url).await.expect_err("unresolvable");

    assert!(matches!(err, EgressError::Resolve { .. }), "{err:?}");
}

#[tokio::test]
async fn resolve_authority_checks_tunnel_targets() {
    let policy = policy(&[]);

    let loopback = policy.resolve_authority("127.0.0.1:443").await;
    let ipv6 = policy.resolve_authority("[::1]:443").await;
    let public = policy.resolve_authority("93.184.216.34:443").await;

    assert!(
        matches!(loopback, Err(EgressError::Blocked { .. })),
        "{loopback:?}"
    );
    assert!(matches!(ipv6, Err(EgressError::Blocked { .. })), "{ipv6:?}");
    let expected: IpAddr = [93, 184, 216, 34].into();
    assert_eq!(
        public.expect("public").first().map(SocketAddr::ip),
        Some(expected)
    );
}

#[tokio::test]
async fn resolve_authority_refuses_targets_without_a_usable_port() {
    let policy = policy(&[]);

    for target in [
        "example.com",
        "example.com:0",
        "example.com:http",
        "::1:443",
    ] {
        let result = policy.resolve_authority(target).await;

        assert!(
            matches!(result, Err(EgressError::BadUrl { .. })),
            "{target}: {result:?}"
        );
    }
}
