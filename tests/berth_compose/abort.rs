//! `up --abort-on-container-exit` stops the project when the first container exits and exits
//! with its code; `--exit-code-from SERVICE` exits with that service's code instead.

use super::project;

#[test]
fn abort_on_container_exit_and_exit_code_from() {
    let Some(p) = project(10, "abrt") else { return };
    let yaml = format!(
        r#"services:
  quick:
    image: busybox
    command: ["sh", "-c", "sleep 1; echo quick-says-bye; exit 3"]
  long:
    image: busybox
    init: true
    command: ["sleep", "600"]
{}"#,
        p.networks_yaml()
    );
    p.write("compose.yaml", &yaml);
    let long = p.container("long", 1);
    let running = |c: &str| p.inspect(c, "{{.State.Running}}");

    // Bad combinations and names: one line, nothing made.
    p.err(&["up", "-d", "--abort-on-container-exit"], "--detach");
    p.err(&["up", "--exit-code-from", "nope"], "no such service: nope");
    assert_eq!(p.containers(), Vec::<String>::new());

    let t = std::time::Instant::now();
    let o = p.run(&["up", "--abort-on-container-exit"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "quick's code: {out}");
    assert!(out.contains("quick-says-bye"), "{out}");
    assert!(
        out.contains(&format!("{} exited with code 3", p.container("quick", 1))),
        "{out}"
    );
    assert_eq!(running(&long), "false", "long stopped with the project");
    eprintln!("abort-on-container-exit: {:?}", t.elapsed());

    // The code of `long` (stopped by the abort), not of `quick` which exited first.
    let o = p.run(&["up", "--exit-code-from", "long"]);
    let code = p.inspect(&long, "{{.State.ExitCode}}");
    eprintln!("--exit-code-from long: {code}");
    assert_ne!(code, "3");
    assert_eq!(o.status.code().map(|c| c.to_string()), Some(code), "{o:?}");
    assert_eq!(running(&long), "false");

    p.ok(&["down"]);
    p.assert_clean(&[]);
}
