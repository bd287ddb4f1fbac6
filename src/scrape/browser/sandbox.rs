//! Whether Chromium runs with its sandbox: the rule over the host's facts (pure, tested here),
//! reading those facts, and the one warning logged when the browser starts without it.
//!
//! Chromium's Linux sandbox needs unprivileged user namespaces (or a setuid helper Debian does
//! not ship), and Chromium refuses to start as root unless told `--no-sandbox`.

use super::BrowserConfig;

/// What `scrape.sandbox` asks for (defined with the configuration, which depends on nothing
/// above it).
pub use crate::config::SandboxMode;

/// The facts about this host that decide whether the sandbox can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    /// The daemon (and so chromedriver and Chromium) runs as root.
    pub root: bool,
    /// `/proc/sys/kernel/unprivileged_userns_clone` (Debian's switch), when the file exists.
    pub userns_clone: Option<u64>,
    /// `/proc/sys/user/max_user_namespaces`; `None` when the kernel has no user namespaces.
    pub max_user_namespaces: Option<u64>,
    /// `/proc/sys/kernel/apparmor_restrict_unprivileged_userns` (Ubuntu 23.10 and later), when
    /// the file exists.
    pub apparmor_restricts_userns: Option<u64>,
}

impl Host {
    /// The facts of the machine the daemon runs on.
    pub fn read() -> Self {
        let number = |path: &str| {
            let text = std::fs::read_to_string(path).ok()?;
            text.trim().parse::<u64>().ok()
        };
        Host {
            root: nix::unistd::geteuid().is_root(),
            userns_clone: number("/proc/sys/kernel/unprivileged_userns_clone"),
            max_user_namespaces: number("/proc/sys/user/max_user_namespaces"),
            apparmor_restricts_userns: number(
                "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
            ),
        }
    }

    /// Why Chromium's sandbox cannot run here, if it cannot.
    pub fn unfit(&self) -> Option<&'static str> {
        if self.root {
            Some("the daemon runs as root, and Chromium will not start as root with its sandbox")
        } else if self.userns_clone == Some(0) {
            Some("unprivileged user namespaces are off (kernel.unprivileged_userns_clone = 0)")
        } else if self.max_user_namespaces.unwrap_or(0) == 0 {
            Some("the kernel allows no user namespaces (user.max_user_namespaces is 0 or absent)")
        } else if self.apparmor_restricts_userns.is_some_and(|v| v != 0) {
            Some(
                "AppArmor restricts unprivileged user namespaces \
                 (kernel.apparmor_restrict_unprivileged_userns = 1)",
            )
        } else {
            None
        }
    }
}

/// What the browser is started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Chromium runs with its sandbox (no `--no-sandbox`).
    pub sandbox: bool,
    /// Said once, as a warning, when the browser starts: why the sandbox is off and what that
    /// means, or why a forced sandbox will likely fail.
    pub warning: Option<String>,
}

/// What a renderer exploit gets when the sandbox is off.
const MEANING: &str = "a page that exploits a bug in Chromium's renderer runs with the full \
rights of the daemon's user instead of inside the sandbox; scrape only sites you trust, or fix \
the cause (docs/deploy.md, \"Chromium's sandbox\")";

/// The rule: `mode` as configured, whether the WebDriver is `external`, and this `host`.
pub fn decide(mode: SandboxMode, external: bool, host: &Host) -> Decision {
    let off = |why: String| Decision {
        sandbox: false,
        warning: Some(format!(
            "Chromium runs without its sandbox: {why}. This means {MEANING}"
        )),
    };
    match mode {
        SandboxMode::Off => off("scrape.sandbox is \"off\"".to_owned()),
        SandboxMode::On => Decision {
            sandbox: true,
            warning: host.unfit().filter(|_| !external).map(|why| {
                format!(
                    "scrape.sandbox is \"on\" although {why}: Chromium will likely fail to \
                     start, and every scrape with it"
                )
            }),
        },
        SandboxMode::Auto if external => off(
            "the WebDriver is external (scrape.webdriver_url) and its host cannot be checked \
             from here; set scrape.sandbox = \"on\" if it runs Chromium's sandbox"
                .to_owned(),
        ),
        SandboxMode::Auto => match host.unfit() {
            Some(why) => off(why.to_owned()),
            None => Decision {
                sandbox: true,
                warning: None,
            },
        },
    }
}

/// Decide for `config` on this host; whether the sandbox runs. The decision is logged once
/// per process (the daemon announces it at start, before any browser runs).
pub(super) fn chosen(config: &BrowserConfig) -> bool {
    static ANNOUNCED: std::sync::Once = std::sync::Once::new();
    let decision = decide(
        config.sandbox,
        config.webdriver_url.is_some(),
        &Host::read(),
    );
    ANNOUNCED.call_once(|| match &decision.warning {
        Some(warning) => tracing::warn!(sandbox = decision.sandbox, "{warning}"),
        None => tracing::info!("Chromium runs with its sandbox"),
    });
    decision.sandbox
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unprivileged daemon on a kernel that allows user namespaces.
    const FIT: Host = Host {
        root: false,
        userns_clone: None,
        max_user_namespaces: Some(63_000),
        apparmor_restricts_userns: None,
    };

    #[test]
    fn auto_sandboxes_an_unprivileged_daemon_with_user_namespaces_and_says_nothing() {
        let decision = decide(SandboxMode::Auto, false, &FIT);

        assert_eq!(
            decision,
            Decision {
                sandbox: true,
                warning: None
            }
        );
        let debian = Host {
            userns_clone: Some(1),
            apparmor_restricts_userns: Some(0),
            ..FIT
        };
        assert!(decide(SandboxMode::Auto, false, &debian).sandbox);
    }

    #[test]
    fn auto_turns_the_sandbox_off_as_root_and_says_why() {
        let root = Host { root: true, ..FIT };

        let decision = decide(SandboxMode::Auto, false, &root);

        assert!(!decision.sandbox);
        let warning = decision.warning.expect("a warning");
        assert!(warning.contains("runs as root"), "{warning}");
        assert!(warning.contains("full rights"), "{warning}");
    }

    #[test]
    fn auto_turns_the_sandbox_off_where_the_kernel_denies_user_namespaces() {
        let hosts = [
            (
                Host {
                    userns_clone: Some(0),
                    ..FIT
                },
                "unprivileged_userns_clone = 0",
            ),
            (
                Host {
                    max_user_namespaces: Some(0),
                    ..FIT
                },
                "max_user_namespaces",
            ),
            (
                Host {
                    max_user_namespaces: None,
                    ..FIT
                },
                "max_user_namespaces",
            ),
            (
                Host {
                    apparmor_restricts_userns: Some(1),
                    ..FIT
                },
                "AppArmor",
            ),
        ];
        for (host, named) in hosts {
            let decision = decide(SandboxMode::Auto, false, &host);

            assert!(!decision.sandbox, "{host:?}");
            let warning = decision.warning.expect("a warning");
            assert!(warning.contains(named), "{warning}");
        }
    }

    #[test]
    fn auto_gives_an_external_webdriver_no_sandbox_whatever_this_host_allows() {
        let decision = decide(SandboxMode::Auto, true, &FIT);

        assert!(!decision.sandbox);
        assert!(decision.warning.expect("a warning").contains("external"));
    }

    #[test]
    fn off_always_disables_the_sandbox_with_a_warning() {
        for external in [false, true] {
            let decision = decide(SandboxMode::Off, external, &FIT);

            assert!(!decision.sandbox);
            assert!(decision.warning.expect("a warning").contains("\"off\""));
        }
    }

    #[test]
    fn on_always_sandboxes_and_warns_only_when_this_host_cannot() {
        let root = Host { root: true, ..FIT };

        assert_eq!(decide(SandboxMode::On, false, &FIT).warning, None);
        assert_eq!(decide(SandboxMode::On, true, &root).warning, None);
        let forced = decide(SandboxMode::On, false, &root);
        assert!(forced.sandbox);
        assert!(forced.warning.expect("a warning").contains("fail"));
    }

    #[test]
    fn the_mode_reads_as_lowercase_words() {
        let mode = |s: &str| serde_json::from_str::<SandboxMode>(s).ok();

        assert_eq!(mode("\"auto\""), Some(SandboxMode::Auto));
        assert_eq!(mode("\"on\""), Some(SandboxMode::On));
        assert_eq!(mode("\"off\""), Some(SandboxMode::Off));
        assert_eq!(mode("\"yes\""), None);
    }
}
