//! Real load of the host: CPU, memory, load average and network throughput, read by `sysinfo`.

use std::time::Instant;
use switchboard_shared::HostLoad;
use sysinfo::{MemoryRefreshKind, Networks, RefreshKind, System};

#[derive(Debug)]
pub struct LoadSampler {
    system: System,
    networks: Networks,
    /// When the network counters were last read, to turn byte counts into rates.
    last_sample: Instant,
}

impl LoadSampler {
    /// Fails where the platform cannot report load (the server then runs without this source).
    pub fn new() -> Result<LoadSampler, sysinfo::Error> {
        let mut system = System::new_with_specifics(
            RefreshKind::nothing().with_memory(MemoryRefreshKind::nothing().with_ram()),
        )?;
        // CPU use is a difference between two readings: take the first now.
        system.refresh_cpu_usage();
        Ok(LoadSampler {
            system,
            networks: Networks::new_with_refreshed_list()?,
            last_sample: Instant::now(),
        })
    }

    /// One reading; fails only if the load average cannot be read.
    pub fn sample(&mut self) -> Result<HostLoad, sysinfo::Error> {
        let load = System::load_average()?;
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        self.networks.refresh(true);
        let elapsed = self.last_sample.elapsed().as_secs_f64().max(0.001);
        self.last_sample = Instant::now();
        let (rx, tx) = self
            .networks
            .iter()
            .fold((0u64, 0u64), |(rx, tx), (_, data)| {
                (rx + data.received(), tx + data.transmitted())
            });
        Ok(HostLoad {
            cpu_percent: (self.system.global_cpu_usage() * 10.0).round() / 10.0,
            mem_used_bytes: self.system.used_memory(),
            mem_total_bytes: self.system.total_memory(),
            load_avg: [load.one, load.five, load.fifteen],
            net_rx_per_sec: (rx as f64 / elapsed) as u64,
            net_tx_per_sec: (tx as f64 / elapsed) as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_real_readings() {
        let mut sampler = LoadSampler::new().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let sample = sampler.sample().unwrap();
        assert!(sample.mem_total_bytes > 0);
        assert!(sample.mem_used_bytes > 0 && sample.mem_used_bytes <= sample.mem_total_bytes);
        assert!((0.0..=100.0).contains(&sample.cpu_percent));
        assert!(sample.load_avg.iter().all(|load| *load >= 0.0));
    }
}
