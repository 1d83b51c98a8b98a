//! Merging `-f` files in order, per the Compose Specification's merge rules: mappings merge by
//! key; sequences append; `command`, `entrypoint` and `healthcheck.test` are replaced;
//! `ports`, `volumes`, `secrets`, `configs` merge by their unique key; `environment`, `labels`,
//! `depends_on`, `networks`... merge by key whichever of list or mapping syntax each file used;
//! `!reset` removes and `!override` replaces.

use super::node::{Map, Node};
use super::{parts, ports, volumes};

/// Merges `over` into `base` (both whole-file trees).
pub fn merge_files(base: Node, over: Node) -> Node {
    merge_value(base, over, &[])
}

/// Drops the `!reset`/`!override` markers of a tree that was not merged with anything.
pub fn strip(n: Node) -> Node {
    match n {
        Node::Override(inner) => strip(*inner),
        Node::Map(m) => Node::Map(
            m.into_iter()
                .filter(|(_, v)| *v != Node::Reset)
                .map(|(k, v)| (k, strip(v)))
                .collect(),
        ),
        Node::Seq(items) => Node::Seq(
            items
                .into_iter()
                .filter(|v| *v != Node::Reset)
                .map(strip)
                .collect(),
        ),
        other => other,
    }
}

#[derive(Clone, Copy)]
enum Rule {
    Replace,
    Dict,
    KeyedMap,
    Unique(fn(&Node) -> Option<String>),
    List,
    Build,
    Generic,
}

fn rule(path: &[String]) -> Rule {
    let segs: Vec<&str> = path.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["services", _, "command" | "entrypoint"] => Rule::Replace,
        ["services", _, "healthcheck", "test"] => Rule::Replace,
        ["services", _, "environment" | "labels" | "sysctls"] => Rule::Dict,
        ["services", _, "build", "args" | "labels"] => Rule::Dict,
        ["services", _, "depends_on" | "networks"] => Rule::KeyedMap,
        ["services", _, "ports"] => Rule::Unique(ports::merge_key),
        ["services", _, "volumes"] => Rule::Unique(volumes::merge_key),
        ["services", _, "secrets" | "configs"] => Rule::Unique(parts::file_ref_merge_key),
        ["services", _, "env_file" | "dns" | "dns_search" | "dns_opt" | "tmpfs" | "expose" | "profiles"
        | "group_add" | "devices" | "links" | "external_links"] => Rule::List,
        ["services", _, "build"] => Rule::Build,
        _ => Rule::Generic,
    }
}

fn merge_value(base: Node, over: Node, path: &[String]) -> Node {
    if let Node::Override(inner) = over {
        return strip(*inner);
    }
    match rule(path) {
        Rule::Replace => strip(over),
        Rule::Dict => merge_maps(to_dict(base), to_dict(over), path),
        Rule::KeyedMap => merge_maps(to_keyed(base), to_keyed(over), path),
        Rule::Unique(key) => merge_unique(to_list(base), to_list(over), key),
        Rule::List => append(to_list(base), to_list(over)),
        Rule::Build => merge_maps(build_map(base), build_map(over), path),
        Rule::Generic => match (base, over) {
            (Node::Map(b), Node::Map(o)) => merge_maps(Node::Map(b), Node::Map(o), path),
            (Node::Seq(b), Node::Seq(o)) => append(Node::Seq(b), Node::Seq(o)),
            (_, o) => strip(o),
        },
    }
}

fn merge_maps(base: Node, over: Node, path: &[String]) -> Node {
    let (Node::Map(mut b), Node::Map(o)) = (base, over.clone()) else {
        return strip(over);
    };
    for (k, v) in o {
        if v == Node::Reset {
            b.remove(&k);
            continue;
        }
        let mut p = path.to_vec();
        p.push(k.clone());
        let merged = match b.remove(&k) {
            Some(old) => merge_value(old, v, &p),
            None => strip(v),
        };
        b.insert(k, merged);
    }
    Node::Map(b)
}

/// `[A=1, B]` → `{A: "1", B: null}`.
fn to_dict(n: Node) -> Node {
    match n {
        Node::Seq(items) => {
            let mut m = Map::new();
            for item in items {
                match item.scalar_text() {
                    Some(s) => match s.split_once('=') {
                        Some((k, v)) => m.insert(k.to_string(), Node::Str(v.to_string())),
                        None => m.insert(s, Node::Null),
                    },
                    None => continue,
                };
            }
            Node::Map(m)
        }
        other => other,
    }
}

/// `[db, cache]` → `{db: {}, cache: {}}`, so a later file's mapping entries merge into them.
fn to_keyed(n: Node) -> Node {
    match n {
        Node::Seq(items) => Node::Map(
            items
                .into_iter()
                .filter_map(|i| i.scalar_text())
                .map(|k| (k, Node::Map(Map::new())))
                .collect(),
        ),
        Node::Map(m) => Node::Map(
            m.into_iter()
                .map(|(k, v)| match v {
                    Node::Null => (k, Node::Map(Map::new())),
                    other => (k, other),
                })
                .collect(),
        ),
        other => other,
    }
}

fn to_list(n: Node) -> Node {
    match n {
        Node::Seq(_) => n,
        Node::Null => Node::Seq(Vec::new()),
        other => Node::Seq(vec![other]),
    }
}

fn build_map(n: Node) -> Node {
    match n {
        Node::Str(s) => {
            let mut m = Map::new();
            m.insert("context".into(), Node::Str(s));
            Node::Map(m)
        }
        other => other,
    }
}

fn append(base: Node, over: Node) -> Node {
    let (Node::Seq(mut b), Node::Seq(o)) = (base, over.clone()) else {
        return strip(over);
    };
    for item in o {
        let item = strip(item);
        if !b.contains(&item) {
            b.push(item);
        }
    }
    Node::Seq(b)
}

fn merge_unique(base: Node, over: Node, key: fn(&Node) -> Option<String>) -> Node {
    let (Node::Seq(mut b), Node::Seq(o)) = (base, over.clone()) else {
        return strip(over);
    };
    for item in o {
        let item = strip(item);
        let k = key(&item);
        match b.iter().position(|x| k.is_some() && key(x) == k) {
            Some(i) => b[i] = item,
            None => b.push(item),
        }
    }
    Node::Seq(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::node::parse_yaml;

    fn merged(a: &str, b: &str) -> Map {
        let n = merge_files(parse_yaml(a, "a").unwrap(), parse_yaml(b, "b").unwrap());
        let Node::Map(top) = n else { panic!() };
        let Node::Map(services) = top["services"].clone() else {
            panic!()
        };
        let Node::Map(web) = services["web"].clone() else {
            panic!()
        };
        web
    }

    fn s(x: &str) -> Node {
        Node::Str(x.into())
    }

    #[test]
    fn mappings_merge_and_scalars_override() {
        let web = merged(
            "services:\n  web:\n    image: a\n    restart: always\n",
            "services:\n  web:\n    image: b\n    user: u\n",
        );
        assert_eq!(web["image"], s("b"));
        assert_eq!(web["restart"], s("always"));
        assert_eq!(web["user"], s("u"));
    }

    #[test]
    fn commands_replaced_sequences_appended() {
        let web = merged(
            "services:\n  web:\n    command: [echo, foo]\n    dns: [1.1.1.1]\n    healthcheck: {test: [CMD, a], retries: 3}\n",
            "services:\n  web:\n    command: [echo, bar]\n    dns: 8.8.8.8\n    healthcheck: {test: [CMD, b]}\n",
        );
        assert_eq!(web["command"], Node::Seq(vec![s("echo"), s("bar")]));
        assert_eq!(web["dns"], Node::Seq(vec![s("1.1.1.1"), s("8.8.8.8")]));
        let Node::Map(hc) = &web["healthcheck"] else {
            panic!()
        };
        assert_eq!(hc["test"], Node::Seq(vec![s("CMD"), s("b")]));
        assert_eq!(hc["retries"], Node::Int(3));
    }

    #[test]
    fn environment_merges_by_key_across_syntaxes() {
        let web = merged(
            "services:\n  web:\n    environment: [A=1, B=2]\n    labels: {x: '1'}\n",
            "services:\n  web:\n    environment: {B: '3', C: '4'}\n    labels: [y=2]\n",
        );
        let Node::Map(env) = &web["environment"] else {
            panic!()
        };
        assert_eq!(env["A"], s("1"));
        assert_eq!(env["B"], s("3"));
        assert_eq!(env["C"], s("4"));
        let Node::Map(labels) = &web["labels"] else {
            panic!()
        };
        assert_eq!(labels.len(), 2);
    }

    #[test]
    fn unique_resources() {
        let web = merged(
            "services:\n  web:\n    ports: ['8080:80', '443:443']\n    volumes: ['a:/data', './x:/x']\n    secrets: [pw]\n",
            "services:\n  web:\n    ports: [{target: 80, published: '8080', protocol: tcp, host_ip: ''}, '9000:9000']\n    volumes: ['b:/data']\n    secrets: [{source: pw2, target: pw}]\n",
        );
        let Node::Seq(ports) = &web["ports"] else {
            panic!()
        };
        assert_eq!(ports.len(), 3, "{ports:?}");
        let Node::Seq(vols) = &web["volumes"] else {
            panic!()
        };
        assert_eq!(vols, &vec![s("b:/data"), s("./x:/x")]);
        let Node::Seq(secrets) = &web["secrets"] else {
            panic!()
        };
        assert_eq!(secrets.len(), 1);
    }

    #[test]
    fn depends_on_and_networks_merge() {
        let web = merged(
            "services:\n  web:\n    depends_on: {db: {condition: service_healthy}}\n    networks: {front: {aliases: [w]}}\n",
            "services:\n  web:\n    depends_on: [cache]\n    networks: [back]\n",
        );
        let Node::Map(d) = &web["depends_on"] else {
            panic!()
        };
        assert_eq!(d.len(), 2);
        let Node::Map(db) = &d["db"] else { panic!() };
        assert_eq!(db["condition"], s("service_healthy"));
        let Node::Map(n) = &web["networks"] else {
            panic!()
        };
        assert_eq!(n.len(), 2);
    }

    #[test]
    fn extra_hosts_lists_append() {
        let web = merged(
            "services:\n  web:\n    extra_hosts: [\"a:10.0.0.1\"]\n",
            "services:\n  web:\n    extra_hosts: [\"b=10.0.0.2\", \"a:10.0.0.1\"]\n",
        );
        assert_eq!(
            web["extra_hosts"],
            Node::Seq(vec![s("a:10.0.0.1"), s("b=10.0.0.2")])
        );
    }

    #[test]
    fn build_string_and_map() {
        let web = merged(
            "services:\n  web:\n    build: ./app\n",
            "services:\n  web:\n    build: {target: dev, args: [A=1]}\n",
        );
        let Node::Map(b) = &web["build"] else {
            panic!()
        };
        assert_eq!(b["context"], s("./app"));
        assert_eq!(b["target"], s("dev"));
    }

    #[test]
    fn reset_and_override() {
        let web = merged(
            "services:\n  web:\n    ports: ['80:80']\n    environment: {A: '1', B: '2'}\n    user: x\n",
            "services:\n  web:\n    ports: !override ['81:81']\n    environment: !override {C: '3'}\n    user: !reset null\n",
        );
        assert_eq!(web["ports"], Node::Seq(vec![s("81:81")]));
        let Node::Map(env) = &web["environment"] else {
            panic!()
        };
        assert_eq!(env.keys().collect::<Vec<_>>(), vec!["C"]);
        assert!(!web.contains_key("user"));
    }

    #[test]
    fn new_services_added() {
        let n = merge_files(
            parse_yaml("services:\n  web: {image: a}\n", "a").unwrap(),
            parse_yaml("services:\n  db: {image: b}\nvolumes: {d: {}}\n", "b").unwrap(),
        );
        let Node::Map(top) = n else { panic!() };
        let Node::Map(services) = &top["services"] else {
            panic!()
        };
        assert_eq!(services.len(), 2);
        assert!(top.contains_key("volumes"));
    }
}
