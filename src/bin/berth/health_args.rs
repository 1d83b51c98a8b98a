//! `--health-*` and `--no-healthcheck` on run/create (flattened into `RunArgs`).

use anyhow::{bail, Result};
use clap::Args;

use hull::image::types::HealthConfig;

#[derive(Args, Clone, Default)]
pub struct HealthArgs {
    /// Command to run to check health (run with /bin/sh -c)
    #[arg(long)]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 30s)
    #[arg(long)]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 30s)
    #[arg(long)]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy (default 3)
    #[arg(long, allow_hyphen_values = true)]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before counting retries (ms|s|m|h)
    #[arg(long)]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 5s)
    #[arg(long)]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long)]
    pub no_healthcheck: bool,
}

/// A duration flag in nanoseconds; docker refuses anything between 0 and 1ms.
fn nanos(flag: &str, v: &Option<String>) -> Result<i64> {
    let Some(s) = v else { return Ok(0) };
    let Some(d) = hull::sys::go_duration(s) else {
        bail!("invalid argument {s:?} for \"--{flag}\" flag: time: invalid duration {s:?}");
    };
    if !d.is_zero() && d < std::time::Duration::from_millis(1) {
        bail!("--{flag} cannot be less than 1ms");
    }
    Ok(d.as_nanos().min(i64::MAX as u128) as i64)
}

impl HealthArgs {
    /// The flags as `CreateOptions.healthcheck`; None when no `--health-*` flag was given.
    pub fn config(&self) -> Result<Option<HealthConfig>> {
        let hc = HealthConfig {
            test: match &self.health_cmd {
                Some(c) if !c.is_empty() => vec!["CMD-SHELL".into(), c.clone()],
                _ => Vec::new(),
            },
            interval: nanos("health-interval", &self.health_interval)?,
            timeout: nanos("health-timeout", &self.health_timeout)?,
            start_period: nanos("health-start-period", &self.health_start_period)?,
            start_interval: nanos("health-start-interval", &self.health_start_interval)?,
            retries: self.health_retries.unwrap_or(0),
        };
        if hc.retries < 0 {
            bail!("--health-retries cannot be negative");
        }
        if hc == HealthConfig::default() {
            return Ok(None);
        }
        if self.no_healthcheck {
            bail!("--no-healthcheck conflicts with --health-* options");
        }
        Ok(Some(hc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        h: HealthArgs,
    }

    fn parse(a: &[&str]) -> Result<Option<HealthConfig>> {
        T::try_parse_from(std::iter::once("t").chain(a.iter().copied()))?
            .h
            .config()
    }

    #[test]
    fn flags() {
        let hc = parse(&["--health-cmd", "true", "--health-interval", "1.5s"])
            .unwrap()
            .unwrap();
        assert_eq!(hc.test, ["CMD-SHELL", "true"]);
        assert_eq!(hc.interval, 1_500_000_000);
        assert!(parse(&[]).unwrap().is_none());
        assert!(parse(&["--no-healthcheck"]).unwrap().is_none());
        assert!(parse(&["--no-healthcheck", "--health-cmd", "x"]).is_err());
        assert!(parse(&["--health-retries", "-1"]).is_err());
        assert!(parse(&["--health-timeout", "10"]).is_err());
        assert!(parse(&["--health-interval", "10us"]).is_err());
    }
}
