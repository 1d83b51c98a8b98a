//! Bad compose files: one clear error line naming the line/key/variable/path, a non-zero
//! exit, and nothing created (no container, network, volume, bridge).

use super::project;

#[test]
fn bad_files_are_refused_and_nothing_is_made() {
    let Some(p) = project(1, "bad") else { return };
    let nets = p.networks_yaml();
    let cases: Vec<(String, &str)> = vec![
        (
            "services:\n  web:\n    image: busybox\n   ports: [\n".into(),
            "compose.yaml:4:",
        ),
        (
            format!("services:\n  web:\n    image: busybox\n    bogus_key: 1\nvolumes:\n  data: {{}}\n{nets}"),
            "services.web.bogus_key: unsupported key",
        ),
        (
            format!("services:\n  a:\n    image: busybox\n    depends_on: [b]\n  b:\n    image: busybox\n    depends_on: [a]\n{nets}"),
            "dependency cycle: a -> b -> a",
        ),
        (
            format!("services:\n  web:\n    image: \"busybox:${{TAG:?TAG must be set}}\"\n{nets}"),
            "TAG must be set",
        ),
        (
            format!("services:\n  web:\n    build: ./no-such-dir\n{nets}"),
            "services.web.build.context",
        ),
        (
            // Typed by the model but not something berth's engine can do: refused by name.
            format!("services:\n  web:\n    image: busybox\n    deploy: {{resources: {{reservations: {{cpus: \"0.5\"}}}}}}\nvolumes:\n  data: {{}}\n{nets}"),
            "services.web.deploy.resources.reservations.cpus",
        ),
    ];
    for (text, needle) in &cases {
        p.write("compose.yaml", text);
        let err = p.err(&["up", "-d"], needle);
        if needle.starts_with("compose.yaml:") {
            // line:column of the syntax error
            assert!(err.contains("YAML syntax error"), "{err}");
            let col = err.split(':').nth(3).unwrap_or("");
            assert!(col.trim().parse::<u32>().is_ok(), "no column in {err}");
        }
        p.assert_clean(&[]);
    }
    // `config` reports the same errors without a project to act on.
    p.write("compose.yaml", &cases[2].0);
    p.err(&["config"], "dependency cycle");
}
