//! The engine against Go's behaviour.

use super::parse;
use serde_json::json;
use serde_json::Value;

fn run(t: &str, v: &Value) -> String {
    parse(t)
        .and_then(|t| t.execute(v))
        .unwrap_or_else(|e| format!("ERR {e}"))
}

#[test]
fn fields_vars_pipes() {
    let v = json!({"A": {"B": "x"}, "N": 3, "L": ["a", "b"], "M": {"z": 1, "a": 2}});
    assert_eq!(run("{{.A.B}}-{{.N}}-{{.Z}}", &v), "x-3-<no value>");
    assert_eq!(run("{{json .A}}", &v), r#"{"B":"x"}"#);
    assert_eq!(run("{{$x := .A}}{{$x.B}}{{$.N}}", &v), "x3");
    assert_eq!(run("{{.A.B | upper}} {{upper .A.B | lower}}", &v), "X x");
    assert_eq!(run("{{(index .L 1)}}{{index .M \"a\"}}", &v), "b2");
    assert_eq!(
        run("{{printf \"%-4s|%3d|%.2f\" .A.B .N 1.5}}", &v),
        "x   |  3|1.50"
    );
    assert_eq!(
        run("{{join .L \",\"}} {{len .L}} {{title \"foo bar\"}}", &v),
        "a,b 2 Foo Bar"
    );
    assert_eq!(
        run("{{range split \"a:b\" \":\"}}[{{.}}]{{end}}", &v),
        "[a][b]"
    );
    assert_eq!(run("{{.M}} {{.L}}", &v), "map[a:2 z:1] [a b]");
    assert_eq!(run("{{/* c */}}a {{- \" b \" -}} c", &v), "a b c");
}

#[test]
fn control_flow() {
    let v = json!({"L": ["a", "b"], "M": {"z": 1, "a": 2}, "E": [], "S": "on"});
    assert_eq!(
        run("{{range $i, $e := .L}}{{$i}}={{$e}} {{end}}", &v),
        "0=a 1=b "
    );
    assert_eq!(run("{{range $k, $v := .M}}{{$k}}{{$v}}{{end}}", &v), "a2z1");
    assert_eq!(run("{{range .E}}x{{else}}none{{end}}", &v), "none");
    assert_eq!(
        run(
            "{{if eq .S \"off\"}}1{{else if eq .S \"on\"}}2{{else}}3{{end}}",
            &v
        ),
        "2"
    );
    assert_eq!(run("{{if and .L (not .E)}}y{{end}}", &v), "y");
    assert_eq!(
        run("{{with .M}}{{.a}}{{end}}{{with .E}}x{{else}}e{{end}}", &v),
        "2e"
    );
    assert_eq!(run("{{.Lab \"k\"}}", &json!({"Lab": {"k": "v"}})), "v");
}

#[test]
fn errors_are_one_line() {
    for bad in [
        "{{.A",
        "{{if .A}}x",
        "{{end}}",
        "{{nosuch .A}}",
        "{{\"x}}",
        "{{range}}{{end}}",
    ] {
        let e = run(bad, &json!({"A": 1}));
        assert!(e.starts_with("ERR ") && !e.contains('\n'), "{bad}: {e}");
    }
    assert!(run("{{.A.B}}", &json!({"A": 1})).contains("can't evaluate field B"));
}
