//! HEALTHCHECK: docker's `Healthcheck` config object and Go duration parsing for its flags.

use crate::image::types::HealthConfig;

use super::parse::{CmdForm, Flag};

impl HealthConfig {
    pub fn none() -> HealthConfig {
        HealthConfig {
            test: vec!["NONE".to_string()],
            ..Default::default()
        }
    }

    /// From `HEALTHCHECK [flags] CMD ...`; errors are docker's messages.
    pub fn from_cmd(flags: &[Flag], cmd: &CmdForm) -> Result<HealthConfig, String> {
        let test = match cmd {
            CmdForm::Exec(v) => std::iter::once("CMD".to_string())
                .chain(v.iter().cloned())
                .collect(),
            CmdForm::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
        };
        let mut h = HealthConfig {
            test,
            ..Default::default()
        };
        for f in flags {
            let v = f.value.as_deref().unwrap_or("");
            let slot = match f.name.as_str() {
                "interval" => &mut h.interval,
                "timeout" => &mut h.timeout,
                "start-period" => &mut h.start_period,
                "start-interval" => &mut h.start_interval,
                "retries" => {
                    h.retries = v.parse::<i64>().ok().filter(|r| *r >= 0).ok_or_else(|| {
                        format!("--retries must be a non-negative integer: {v:?}")
                    })?;
                    continue;
                }
                other => return Err(format!("HEALTHCHECK: unknown flag: --{other}")),
            };
            let d = parse_duration(v).map_err(|e| format!("--{}: {e}", f.name))?;
            if d != 0 && d < 1_000_000 {
                return Err(format!("{} cannot be less than 1ms", flag_title(&f.name)));
            }
            *slot = d;
        }
        Ok(h)
    }
}

fn flag_title(name: &str) -> &'static str {
    match name {
        "interval" => "Interval",
        "timeout" => "Timeout",
        "start-period" => "StartPeriod",
        _ => "StartInterval",
    }
}

/// Go's `time.ParseDuration` (nanoseconds): `300ms`, `1h2m3.5s`, `0`.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    crate::sys::go_duration(s)
        .and_then(|d| i64::try_from(d.as_nanos()).ok())
        .ok_or_else(|| format!("time: invalid duration {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(n: &str, v: &str) -> Flag {
        Flag {
            name: n.into(),
            value: Some(v.into()),
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(5_000_000_000));
        assert_eq!(parse_duration("300ms"), Ok(300_000_000));
        assert_eq!(parse_duration("1h2m3.5s"), Ok(3_723_500_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5x").is_err());
    }

    #[test]
    fn health_from_flags() {
        let h = HealthConfig::from_cmd(
            &[
                flag("interval", "5s"),
                flag("retries", "3"),
                flag("start-interval", "1s"),
            ],
            &CmdForm::Shell("curl -f http://localhost/".into()),
        )
        .unwrap();
        assert_eq!(h.test, vec!["CMD-SHELL", "curl -f http://localhost/"]);
        assert_eq!(
            (h.interval, h.retries, h.start_interval),
            (5_000_000_000, 3, 1_000_000_000)
        );
        let json = serde_json::to_value(&h).unwrap();
        assert_eq!(json["Interval"], 5_000_000_000i64);
        assert!(json.get("Timeout").is_none());
        let h = HealthConfig::from_cmd(&[], &CmdForm::Exec(vec!["/bin/check".into()])).unwrap();
        assert_eq!(h.test, vec!["CMD", "/bin/check"]);
        assert_eq!(
            HealthConfig::from_cmd(&[flag("timeout", "10us")], &CmdForm::Shell("x".into())),
            Err("Timeout cannot be less than 1ms".to_string())
        );
        assert!(
            HealthConfig::from_cmd(&[flag("retries", "-1")], &CmdForm::Shell("x".into())).is_err()
        );
    }
}
