use super::*;

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn change(state: &mut ConfigState, line: &str) -> String {
    apply_change_line(state, line).unwrap()
}

#[test]
fn env_order_and_override() {
    let mut st = ConfigState::default();
    st.config.env = Some(v(&["PATH=/bin", "A=0"]));
    assert_eq!(change(&mut st, "ENV A=1 B=\"x y\""), "ENV A=1 B=x y");
    assert_eq!(st.config.env, Some(v(&["PATH=/bin", "A=1", "B=x y"])));
    // Expansion against the config's own Env, as docker commit does.
    change(&mut st, "ENV PATH=$PATH:/opt/bin");
    assert_eq!(st.config.env_get("PATH").as_deref(), Some("/bin:/opt/bin"));
    change(&mut st, "ENV C value with spaces");
    assert_eq!(st.config.env_get("C").as_deref(), Some("value with spaces"));
}

#[test]
fn cmd_entrypoint_interplay() {
    let mut st = ConfigState::default();
    st.config.cmd = Some(v(&["base-cmd"]));
    // ENTRYPOINT resets an inherited CMD...
    assert_eq!(
        change(&mut st, "ENTRYPOINT [\"/e\"]"),
        "ENTRYPOINT [\"/e\"]"
    );
    assert_eq!(st.config.cmd, None);
    // ...but not one set earlier in the same stage.
    change(&mut st, "CMD run --fast");
    assert_eq!(st.config.cmd, Some(v(&["/bin/sh", "-c", "run --fast"])));
    change(&mut st, "ENTRYPOINT /entry.sh");
    assert_eq!(
        st.config.entrypoint,
        Some(v(&["/bin/sh", "-c", "/entry.sh"]))
    );
    assert_eq!(st.config.cmd, Some(v(&["/bin/sh", "-c", "run --fast"])));
    change(&mut st, "ENTRYPOINT []");
    assert_eq!(st.config.entrypoint, None);
}

#[test]
fn shell_applies_to_later_shell_forms() {
    let mut st = ConfigState::default();
    let ch = Change::Shell(v(&["/bin/bash", "-o", "pipefail", "-c"]));
    assert_eq!(
        apply(&mut st, &ch).unwrap(),
        "SHELL [/bin/bash -o pipefail -c]"
    );
    change(&mut st, "CMD echo hi");
    assert_eq!(
        st.config.cmd,
        Some(v(&["/bin/bash", "-o", "pipefail", "-c", "echo hi"]))
    );
    assert_eq!(
        nop_created_by(&st.config, "ENV A=1"),
        "/bin/bash -o pipefail -c #(nop)  ENV A=1"
    );
}

#[test]
fn workdir_joins_and_cleans() {
    let mut st = ConfigState::default();
    change(&mut st, "WORKDIR app");
    assert_eq!(st.config.working_dir.as_deref(), Some("/app"));
    change(&mut st, "WORKDIR sub/../src");
    assert_eq!(st.config.working_dir.as_deref(), Some("/app/src"));
    change(&mut st, "WORKDIR /abs//x/");
    assert_eq!(st.config.working_dir.as_deref(), Some("/abs/x"));
    st.config.env_set("D", "/data");
    change(&mut st, "WORKDIR $D/in");
    assert_eq!(st.config.working_dir.as_deref(), Some("/data/in"));
}

#[test]
fn expose_volume_label_user() {
    let mut st = ConfigState::default();
    change(&mut st, "EXPOSE 80 443/tcp 53/UDP 9000-9002/udp");
    let ports: Vec<&String> = st.config.exposed_ports.as_ref().unwrap().keys().collect();
    assert_eq!(
        ports,
        vec!["443/tcp", "53/udp", "80/tcp", "9000/udp", "9001/udp", "9002/udp"]
    );
    assert!(apply_change_line(&mut st, "EXPOSE 0").is_err());
    assert!(apply_change_line(&mut st, "EXPOSE 80/xyz").is_err());
    assert!(apply_change_line(&mut st, "EXPOSE 90-80").is_err());
    change(&mut st, "VOLUME [\"/a\", \"/b\"]");
    change(&mut st, "VOLUME /c");
    assert_eq!(st.config.volumes.as_ref().unwrap().len(), 3);
    change(&mut st, "LABEL \"com.example.x\"=\"a b\" v=1");
    assert_eq!(st.config.labels.as_ref().unwrap()["com.example.x"], "a b");
    change(&mut st, "USER 1000:1000");
    assert_eq!(st.config.user.as_deref(), Some("1000:1000"));
    let json = serde_json::to_value(&st.config).unwrap();
    assert_eq!(json["ExposedPorts"]["80/tcp"], serde_json::json!({}));
    assert_eq!(json["User"], "1000:1000");
}

#[test]
fn commit_rejects_other_instructions() {
    let mut st = ConfigState::default();
    let e = apply_change_line(&mut st, "RUN echo").unwrap_err();
    assert_eq!(e.to_string(), "RUN is not a valid change command");
    assert!(apply_change_line(&mut st, "FROMM x").is_err());
    change(&mut st, "ONBUILD RUN make");
    assert_eq!(st.config.on_build, Some(v(&["RUN make"])));
}

#[test]
fn stopsignal_healthcheck_maintainer() {
    let mut st = ConfigState::default();
    apply(&mut st, &Change::StopSignal("SIGQUIT".into())).unwrap();
    apply(&mut st, &Change::StopSignal("9".into())).unwrap();
    assert!(apply(&mut st, &Change::StopSignal("SIGNOPE".into())).is_err());
    let h = HealthConfig::none();
    assert_eq!(
        apply(&mut st, &Change::Healthcheck(h)).unwrap(),
        "HEALTHCHECK [\"NONE\"]"
    );
    apply(&mut st, &Change::Maintainer("me".into())).unwrap();
    assert_eq!(st.author.as_deref(), Some("me"));
}

#[test]
fn created_by_shapes() {
    let c = RunConfig::default();
    assert_eq!(
        run_created_by(&v(&["/bin/sh", "-c", "make"]), &[("V".into(), "1".into())]),
        "|1 V=1 /bin/sh -c make"
    );
    assert_eq!(
        run_created_by(&v(&["/bin/sh", "-c", "make"]), &[]),
        "/bin/sh -c make"
    );
    assert_eq!(
        copy_created_by(&c, "COPY", "file", "ab12", "/app/"),
        "/bin/sh -c #(nop) COPY file:ab12 in /app/ "
    );
}

#[test]
fn roundtrip_with_image_runconfig_json() {
    let json = r#"{"Env":["A=1"],"Cmd":["sh"],"Healthcheck":{"Test":["CMD","x"],"Interval":1000000000},"OnBuild":["RUN x"],"Shell":["/bin/bash","-c"]}"#;
    let c: RunConfig = serde_json::from_str(json).unwrap();
    assert_eq!(c.healthcheck.as_ref().unwrap().interval, 1_000_000_000);
    let back = serde_json::to_string(&c).unwrap();
    let again: RunConfig = serde_json::from_str(&back).unwrap();
    assert_eq!(c, again);
    // The project's RunConfig reads the fields it knows from the same JSON.
    let rc: crate::image::types::RunConfig = serde_json::from_str(&back).unwrap();
    assert_eq!(rc.cmd, Some(v(&["sh"])));
}
