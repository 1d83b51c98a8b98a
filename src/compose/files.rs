//! Which compose files make the project: `-f` as given; else `COMPOSE_FILE`; else the first of
//! the default names in the current directory or, as docker compose does, the nearest parent
//! holding one, plus its override file.

use std::path::{Path, PathBuf};

use super::{absolute, dotenv, ComposeError, LoadOptions};

pub const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

pub const OVERRIDE_FILES: [&str; 4] = [
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

fn first_in(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// The compose file found from `dir` upwards.
pub fn find_compose_file(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().find_map(|d| first_in(d, &DEFAULT_FILES))
}

/// The override file beside a discovered compose file.
pub fn find_override_file(dir: &Path) -> Option<PathBuf> {
    first_in(dir, &OVERRIDE_FILES)
}

/// `COMPOSE_FILE` from the process environment, else from the `.env` of the working directory.
fn compose_file_var(opts: &LoadOptions) -> Result<Option<String>, ComposeError> {
    if let Some(v) = opts.environment.get("COMPOSE_FILE") {
        return Ok(Some(v.clone()));
    }
    let dir = match &opts.project_directory {
        Some(d) => absolute(&opts.cwd, d),
        None => opts.cwd.clone(),
    };
    let dotenv_path = dir.join(".env");
    if !dotenv_path.is_file() || !opts.env_files.is_empty() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&dotenv_path).map_err(|e| ComposeError::Io {
        path: dotenv_path.display().to_string(),
        source: e,
    })?;
    let lookup = |k: &str| opts.environment.get(k).cloned();
    let vars = dotenv::parse(&text, &dotenv_path.display().to_string(), &lookup)?;
    Ok(vars
        .into_iter()
        .find(|(k, _)| k == "COMPOSE_FILE")
        .map(|(_, v)| v))
}

/// Absolute paths of the files to merge, in order.
pub fn config_files(opts: &LoadOptions) -> Result<Vec<PathBuf>, ComposeError> {
    let mut given: Vec<PathBuf> = opts.files.clone();
    if given.is_empty() {
        if let Some(list) = compose_file_var(opts)? {
            let sep = opts
                .environment
                .get("COMPOSE_PATH_SEPARATOR")
                .cloned()
                .unwrap_or_else(|| ":".into());
            given = list
                .split(sep.as_str())
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect();
        }
    }
    if !given.is_empty() {
        let files: Vec<PathBuf> = given.iter().map(|f| absolute(&opts.cwd, f)).collect();
        for f in &files {
            if !f.is_file() {
                return Err(ComposeError::NotFound(format!(
                    "{}: compose file not found",
                    f.display()
                )));
            }
        }
        return Ok(files);
    }
    let start = match &opts.project_directory {
        Some(d) => absolute(&opts.cwd, d),
        None => opts.cwd.clone(),
    };
    let main = find_compose_file(&start).ok_or_else(|| {
        ComposeError::NotFound(format!(
            "no compose file ({}) in {} or its parents",
            DEFAULT_FILES.join(", "),
            start.display()
        ))
    })?;
    let mut files = vec![main.clone()];
    if let Some(o) = main.parent().and_then(find_override_file) {
        files.push(o);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_walks_up_and_adds_override() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::write(root.join("docker-compose.yml"), "services: {}\n").unwrap();
        std::fs::write(root.join("compose.yaml"), "services: {}\n").unwrap();
        std::fs::write(root.join("compose.override.yaml"), "services: {}\n").unwrap();
        let sub = root.join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        let opts = LoadOptions {
            cwd: sub.clone(),
            ..LoadOptions::default()
        };
        let files = config_files(&opts).unwrap();
        assert_eq!(
            files,
            vec![
                root.join("compose.yaml"),
                root.join("compose.override.yaml")
            ]
        );
    }

    #[test]
    fn explicit_files_and_compose_file_var() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::write(root.join("a.yml"), "").unwrap();
        std::fs::write(root.join("b.yml"), "").unwrap();
        std::fs::write(root.join("compose.override.yaml"), "").unwrap();
        let mut opts = LoadOptions {
            cwd: root.to_path_buf(),
            files: vec!["a.yml".into(), "./b.yml".into()],
            ..LoadOptions::default()
        };
        // -f given: no override file.
        assert_eq!(
            config_files(&opts).unwrap(),
            vec![root.join("a.yml"), root.join("b.yml")]
        );
        opts.files.clear();
        opts.environment
            .insert("COMPOSE_FILE".into(), "b.yml:a.yml".into());
        assert_eq!(
            config_files(&opts).unwrap(),
            vec![root.join("b.yml"), root.join("a.yml")]
        );
        opts.environment.clear();
        std::fs::write(root.join(".env"), "COMPOSE_FILE=a.yml\n").unwrap();
        assert_eq!(config_files(&opts).unwrap(), vec![root.join("a.yml")]);
        opts.files = vec!["missing.yml".into()];
        let e = config_files(&opts).unwrap_err().to_string();
        assert!(e.ends_with("missing.yml: compose file not found"), "{e}");
    }

    #[test]
    fn nothing_found() {
        let t = tempfile::tempdir().unwrap();
        if t.path().parent().and_then(find_compose_file).is_some() {
            println!("SKIP: a compose file exists above the temp dir");
            return;
        }
        let opts = LoadOptions {
            cwd: t.path().to_path_buf(),
            ..LoadOptions::default()
        };
        let e = config_files(&opts).unwrap_err().to_string();
        assert!(e.starts_with("no compose file"), "{e}");
    }
}
