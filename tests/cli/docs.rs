//! `workhorse completions` and `workhorse man`: generated from the clap tree, no config needed.

use std::process::Command;

use crate::helpers::WORKHORSE;

fn run(args: &[&str]) -> String {
    let out = Command::new(WORKHORSE).args(args).output().unwrap();
    assert!(out.status.success(), "workhorse {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let script = run(&["completions", shell]);

        assert!(script.contains("workhorse"), "{shell}: {script}");
        assert!(
            script.contains("deliveries"),
            "{shell} lacks the operator commands"
        );
    }
}

#[test]
fn man_prints_the_main_page_and_writes_one_page_per_command() {
    let dir = tempfile::TempDir::new().unwrap();
    let out = dir.path().join("man1");

    let page = run(&["man"]);
    run(&["man", "--out-dir", out.to_str().unwrap()]);

    assert!(page.contains(".TH workhorse"), "{page}");
    for name in [
        "workhorse.1",
        "workhorse-jobs.1",
        "workhorse-jobs-retry.1",
        "workhorse-status.1",
    ] {
        let text = std::fs::read_to_string(out.join(name)).unwrap_or_default();
        assert!(text.contains(".TH"), "{name} missing");
    }
    // clap's `help` subcommands only repeat the other pages.
    let names: Vec<String> = (std::fs::read_dir(&out).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("-help")), "{names:?}");
}

#[test]
fn a_reader_that_stops_early_ends_the_command_quietly() {
    for args in [&["completions", "bash"][..], &["man"][..]] {
        let mut child = Command::new(WORKHORSE)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Like `| head -c0`: the reader is gone before anything is written.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();

        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "workhorse {args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "workhorse {args:?}: {stderr}");
    }
}
