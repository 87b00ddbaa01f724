use super::*;

const MEMINFO: &str = "MemTotal:       16318412 kB
MemFree:         1021136 kB
MemAvailable:    9876543 kB
Buffers:          123456 kB
HugePages_Total:       4
Hugepagesize:       2048 kB
DirectMap1G:     8388608 kB
Garbage line
";

#[test]
fn meminfo_keeps_kernel_units() {
    let m = parse_meminfo(MEMINFO);
    assert_eq!(m.get("MemTotal"), 16_318_412);
    assert_eq!(m.get("MemAvailable"), 9_876_543);
    assert_eq!(m.get("HugePages_Total"), 4);
    assert_eq!(m.get("DirectMap1G"), 8_388_608);
    assert_eq!(m.get("CmaTotal"), 0);
    assert!(!m.contains("CmaTotal"));
}

#[test]
fn loadavg_parses_three_averages() {
    let l = parse_loadavg("0.52 0.41 0.30 2/345 67890\n").expect("parse");
    assert_eq!(
        l,
        LoadAvg {
            load1: 0.52,
            load5: 0.41,
            load15: 0.30
        }
    );
    assert!(parse_loadavg("0.5\n").is_err());
}

const CPUINFO: &str = "processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 85
model name\t: Intel(R) Xeon(R) Platinum 8175M CPU @ 2.50GHz
stepping\t: 4
microcode\t: 0x2007006
cpu MHz\t\t: 2500.000
cache size\t: 33792 KB
physical id\t: 0
siblings\t: 2
core id\t\t: 0
cpu cores\t: 1
apicid\t\t: 0
fpu\t\t: yes
cpuid level\t: 13
flags\t\t: fpu vme de pse
bugs\t\t: cpu_meltdown spectre_v1
bogomips\t: 5000.00
clflush size\t: 64
address sizes\t: 46 bits physical, 48 bits virtual
power management:

processor\t: 1
vendor_id\t: GenuineIntel
cpu MHz\t\t: 2499.998
";

#[test]
fn cpuinfo_splits_processors() {
    let cpus = parse_cpuinfo(CPUINFO);
    assert_eq!(cpus.len(), 2);
    let c = &cpus[0];
    assert_eq!(c.number::<u32>("processor"), 0);
    assert_eq!(c.get("vendor_id"), "GenuineIntel");
    assert_eq!(
        c.get("model name"),
        "Intel(R) Xeon(R) Platinum 8175M CPU @ 2.50GHz"
    );
    assert_eq!(c.number::<f64>("cpu MHz"), 2500.0);
    assert_eq!(c.number::<u32>("siblings"), 2);
    assert_eq!(c.words("flags"), ["fpu", "vme", "de", "pse"]);
    assert_eq!(c.words("bugs"), ["cpu_meltdown", "spectre_v1"]);
    assert_eq!(c.get("power management"), "");
    assert_eq!(c.get("address sizes"), "46 bits physical, 48 bits virtual");
    assert_eq!(cpus[1].number::<u32>("processor"), 1);
    assert_eq!(cpus[1].number::<f64>("cpu MHz"), 2499.998);
}

const STAT: &str = "cpu  1000 20 300 40000 50 6 7 8 0 0
cpu0 500 10 150 20000 25 3 3 4 0 0
cpu2 500 10 150 20000 25 3 4 4 0 0
intr 12345 10 0 20
ctxt 987654
btime 1700000000
processes 4321
procs_running 3
procs_blocked 1
softirq 5000 1 2 3 4 5 6 7 8 9 10
";

#[test]
fn stat_converts_ticks_to_seconds() {
    let s = parse_stat(STAT).expect("parse");
    assert_eq!(s.boot_time, 1_700_000_000);
    assert_eq!(s.cpu_total.user, 10.0);
    assert_eq!(s.cpu_total.idle, 400.0);
    assert_eq!(s.cpu_total.steal, 0.08);
    assert_eq!(s.cpu.len(), 3, "cpu1 missing stays as a zero entry");
    assert_eq!(s.cpu[1], CpuTimes::default());
    assert_eq!(s.cpu[2].softirq, 0.04);
    assert_eq!(s.irq_total, 12345);
    assert_eq!(s.irq, [10, 0, 20]);
    assert_eq!(s.context_switches, 987_654);
    assert_eq!(s.processes_created, 4321);
    assert_eq!(s.processes_running, 3);
    assert_eq!(s.processes_blocked, 1);
    assert_eq!(s.softirq_total, 5000);
    assert_eq!(s.softirq.hi, 1);
    assert_eq!(s.softirq.rcu, 10);
}

#[test]
fn stat_rejects_non_numbers() {
    assert!(parse_stat("ctxt lots\n").is_err());
}

const DISKSTATS: &str = "   7       0 loop0 1 0 2 0 0 0 0 0 0 4 0 0 0 0 0 0 0
 259       0 nvme0n1 100 2 3000 40 50 6 700 80 0 90 120 1 0 8 2 5 6
   8       0 sda 1 2 3 4 5 6 7 8 9 10 11
";

#[test]
fn diskstats_needs_discard_counters() {
    let d = parse_diskstats(DISKSTATS).expect("parse");
    assert_eq!(d.len(), 2, "the short sda line is skipped");
    assert_eq!(d[1].name, "nvme0n1");
    assert_eq!(
        d[1].values,
        [100, 2, 3000, 40, 50, 6, 700, 80, 0, 90, 120, 1, 0, 8, 2]
    );
}

const NETDEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  123456     100    0    0    0     0          0         0   123456     100    0    0    0     0       0          0
  eth0: 9876543   54321    1    2    3     4          5         6  1234567   12345    7    8    9    10      11         12
";

#[test]
fn net_dev_splits_rx_and_tx() {
    let d = parse_net_dev(NETDEV).expect("parse");
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].name, "lo");
    assert_eq!(d[1].name, "eth0");
    assert_eq!(d[1].rx, [9_876_543, 54321, 1, 2, 3, 4, 5, 6]);
    assert_eq!(d[1].tx, [1_234_567, 12345, 7, 8, 9, 10, 11, 12]);
    assert!(parse_net_dev("eth0: 1 2 3\n").is_err());
}

#[test]
fn mounts_unescape_octal() {
    let m = parse_mounts(
        "proc /proc proc rw,nosuid 0 0\n/dev/sda1 /mnt/with\\040space ext4 rw 0 0\nshort\n",
    );
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].source, "proc");
    assert_eq!(m[0].fstype, "proc");
    assert_eq!(m[1].target, "/mnt/with space");
    assert_eq!(unescape_octal("a\\134b\\"), "a\\b\\");
}

#[test]
fn real_proc_files_parse() {
    let proc = Path::new("/proc");
    assert!(read_meminfo(proc).expect("meminfo").get("MemTotal") > 0);
    read_loadavg(proc).expect("loadavg");
    assert!(!read_cpuinfo(proc).expect("cpuinfo").is_empty());
    assert!(read_stat(proc).expect("stat").boot_time > 0);
    read_diskstats(proc).expect("diskstats");
    assert!(!read_net_dev(proc).expect("net/dev").is_empty());
    assert!(!read_mounts(proc).expect("mounts").is_empty());
    assert!(read_uptime(proc).expect("uptime") > 0.0);
}
