//! Host and daemon health for `daemon.status`: CPU, memory, load, the daemon's own
//! resident memory. Sampled in the background every few seconds, so a status request
//! never waits on /proc and CPU percentages cover a real interval.

use mem_protocol::methods::{HostStatus, ProcessStatus};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// How often the sample is refreshed.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(2);

/// The latest sample, shared with request handlers.
#[derive(Clone)]
pub struct HealthMonitor {
    latest: Arc<Mutex<(HostStatus, ProcessStatus)>>,
}

struct Sampler {
    system: Option<System>,
    pid: Pid,
    hostname: Option<String>,
}

impl Sampler {
    fn sample(&mut self) -> (HostStatus, ProcessStatus) {
        let load = System::load_average()
            .map(|l| [l.one, l.five, l.fifteen])
            .unwrap_or([0.0; 3]);
        let Some(system) = self.system.as_mut() else {
            let host = HostStatus {
                hostname: self.hostname.clone(),
                cpu_count: 0,
                cpu_percent: 0.0,
                memory_total_bytes: 0,
                memory_used_bytes: 0,
                load_average: load,
            };
            return (
                host,
                ProcessStatus {
                    rss_bytes: 0,
                    cpu_percent: 0.0,
                },
            );
        };
        system.refresh_cpu_usage();
        system.refresh_memory();
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[self.pid]),
            false,
            ProcessRefreshKind::nothing().with_memory().with_cpu(),
        );
        let host = HostStatus {
            hostname: self.hostname.clone(),
            cpu_count: system.cpus().len(),
            cpu_percent: system.global_cpu_usage(),
            memory_total_bytes: system.total_memory(),
            memory_used_bytes: system.used_memory(),
            load_average: load,
        };
        let process = system
            .process(self.pid)
            .map(|p| ProcessStatus {
                rss_bytes: p.memory(),
                cpu_percent: p.cpu_usage(),
            })
            .unwrap_or(ProcessStatus {
                rss_bytes: 0,
                cpu_percent: 0.0,
            });
        (host, process)
    }
}

impl HealthMonitor {
    /// Takes a first sample now and refreshes it in the background until the runtime stops.
    pub fn start() -> HealthMonitor {
        let mut sampler = Sampler {
            system: System::new().ok(),
            pid: Pid::from_u32(std::process::id()),
            hostname: System::host_name().ok(),
        };
        let latest = Arc::new(Mutex::new(sampler.sample()));
        let shared = latest.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
            tick.tick().await;
            loop {
                tick.tick().await;
                let sample = sampler.sample();
                *shared.lock().expect("health lock") = sample;
            }
        });
        HealthMonitor { latest }
    }

    /// The latest sample.
    pub fn latest(&self) -> (HostStatus, ProcessStatus) {
        self.latest.lock().expect("health lock").clone()
    }
}
