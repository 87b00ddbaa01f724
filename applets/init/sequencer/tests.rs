use std::sync::Mutex;

use talos::events::{Tail, WatchOptions};

use super::*;

fn bus() -> Arc<EventBus> {
    Arc::new(EventBus::new(1000, 0))
}

/// Decoded (type, name, action) of every event published so far.
fn drain(sub: &mut talos::events::Subscription) -> Vec<(String, String, i32)> {
    let mut out = Vec::new();
    while let Some(e) = sub.try_next() {
        let short = e.type_url.trim_start_matches("talos/runtime/").to_string();
        let (name, action) = match short.as_str() {
            "machine.SequenceEvent" => {
                let ev = pb::SequenceEvent::decode(e.payload.as_slice()).expect("decode");
                (ev.sequence, ev.action)
            }
            "machine.PhaseEvent" => {
                let ev = pb::PhaseEvent::decode(e.payload.as_slice()).expect("decode");
                (ev.phase, ev.action)
            }
            "machine.TaskEvent" => {
                let ev = pb::TaskEvent::decode(e.payload.as_slice()).expect("decode");
                (ev.task, ev.action)
            }
            _ => continue,
        };
        out.push((short, name, action));
    }
    out
}

fn recording_task(log: &Arc<Mutex<Vec<String>>>, name: &str, delay_ms: u64) -> Task {
    let log = Arc::clone(log);
    let name_owned = name.to_string();
    Task::new(name, move || async move {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        log.lock().expect("log").push(name_owned);
        Ok(())
    })
}

#[tokio::test]
async fn phases_run_in_order_and_tasks_of_a_phase_together() {
    let events = bus();
    let mut sub = events.subscribe(WatchOptions {
        tail: Tail::None,
        actor_id: None,
    });
    let seq = Sequencer::new(Arc::clone(&events));
    let log = Arc::new(Mutex::new(Vec::new()));
    let phases = vec![
        Phase::new(
            "one",
            vec![
                recording_task(&log, "slow", 80),
                recording_task(&log, "fast", 1),
            ],
        ),
        Phase::new("two", vec![recording_task(&log, "last", 0)]),
    ];
    seq.run(Sequence::Boot, phases, false).await.expect("boot");
    // Concurrent within a phase (fast finishes first), ordered between phases.
    assert_eq!(*log.lock().expect("log"), vec!["fast", "slow", "last"]);
    assert_eq!(seq.running(), None);
    let events = drain(&mut sub);
    let start = pb::sequence_event::Action::Start as i32;
    let stop = pb::sequence_event::Action::Stop as i32;
    assert_eq!(
        events.first(),
        Some(&("machine.SequenceEvent".into(), "boot".into(), start))
    );
    assert_eq!(
        events.last(),
        Some(&("machine.SequenceEvent".into(), "boot".into(), stop))
    );
    let phases: Vec<_> = events
        .iter()
        .filter(|e| e.0 == "machine.PhaseEvent")
        .map(|e| (e.1.as_str(), e.2))
        .collect();
    assert_eq!(phases, vec![("one", 0), ("one", 1), ("two", 0), ("two", 1)]);
    let tasks = events.iter().filter(|e| e.0 == "machine.TaskEvent").count();
    assert_eq!(tasks, 6);
}

#[tokio::test]
async fn failing_task_fails_the_sequence_and_later_phases_do_not_run() {
    let events = bus();
    let mut sub = events.subscribe(WatchOptions::default());
    let seq = Sequencer::new(Arc::clone(&events));
    let log = Arc::new(Mutex::new(Vec::new()));
    let phases = vec![
        Phase::new(
            "first",
            vec![
                recording_task(&log, "ok", 0),
                Task::new("broken", || async { anyhow::bail!("disk on fire") }),
            ],
        ),
        Phase::new("second", vec![recording_task(&log, "never", 0)]),
    ];
    let err = seq
        .run(Sequence::Boot, phases, false)
        .await
        .expect_err("fails");
    assert_eq!(
        err.to_string(),
        "error running phase 1 in boot sequence: task broken (2/2): failed, disk on fire"
    );
    assert_eq!(*log.lock().expect("log"), vec!["ok"]);
    let mut found_error = false;
    while let Some(e) = sub.try_next() {
        if e.type_url.ends_with("machine.SequenceEvent") {
            let ev = pb::SequenceEvent::decode(e.payload.as_slice()).expect("decode");
            if let Some(error) = ev.error {
                assert_eq!(error.code, common_pb::Code::Fatal as i32);
                assert!(error.message.contains("disk on fire"), "{}", error.message);
                found_error = true;
            }
        }
    }
    assert!(found_error, "a SequenceEvent carries the error");
}

#[tokio::test]
async fn panicking_task_is_caught() {
    let seq = Sequencer::new(bus());
    let phases = vec![Phase::new(
        "p",
        vec![Task::new("boom", || async {
            if true {
                panic!("bad thing");
            }
            Ok(())
        })],
    )];
    let err = seq
        .run(Sequence::Boot, phases, false)
        .await
        .expect_err("fails");
    assert!(err.to_string().contains("panicked: bad thing"), "{err}");
    // The sequencer is usable afterwards.
    seq.run(Sequence::Shutdown, vec![], false)
        .await
        .expect("next sequence runs");
}

#[test]
fn takeover_rules_match_talos() {
    use Sequence::*;
    assert!(Reboot.can_take_over(Boot));
    assert!(Reset.can_take_over(Boot));
    assert!(Reboot.can_take_over(Reboot));
    assert!(Reboot.can_take_over(Reset));
    assert!(!Reset.can_take_over(Reboot));
    assert!(!Shutdown.can_take_over(Boot));
    assert!(!Boot.can_take_over(Initialize));
    assert!(!Reboot.can_take_over(Initialize));
    assert!(!Reset.can_take_over(Reset));
}

fn blocking_phase(started: Arc<tokio::sync::Notify>) -> Vec<Phase> {
    vec![Phase::new(
        "wait",
        vec![Task::new("forever", move || async move {
            started.notify_one();
            std::future::pending::<()>().await;
            Ok(())
        })],
    )]
}

#[tokio::test]
async fn takeover_refused_while_locked() {
    let events = bus();
    let seq = Arc::new(Sequencer::new(Arc::clone(&events)));
    let started = Arc::new(tokio::sync::Notify::new());
    let runner = {
        let seq = Arc::clone(&seq);
        let phases = blocking_phase(Arc::clone(&started));
        tokio::spawn(async move { seq.run(Sequence::Initialize, phases, false).await })
    };
    started.notified().await;
    assert_eq!(seq.running(), Some(Sequence::Initialize));
    let mut sub = events.subscribe(WatchOptions::default());
    let err = seq
        .run(Sequence::Reboot, vec![], false)
        .await
        .expect_err("locked");
    assert_eq!(
        err,
        SequenceError::Locked {
            requested: Sequence::Reboot,
            running: Sequence::Initialize
        }
    );
    assert!(seq.check(Sequence::Shutdown, false).is_err());
    assert!(seq.check(Sequence::Shutdown, true).is_ok());
    let e = sub.try_next().expect("noop event");
    let ev = pb::SequenceEvent::decode(e.payload.as_slice()).expect("decode");
    assert_eq!(ev.action, pb::sequence_event::Action::Noop as i32);
    assert_eq!(
        ev.error.map(|e| e.code),
        Some(common_pb::Code::Locked as i32)
    );
    // A forced sequence (signals) takes over anyway.
    seq.run(Sequence::Shutdown, vec![], true)
        .await
        .expect("forced");
    assert_eq!(
        runner.await.expect("join"),
        Err(SequenceError::Canceled(Sequence::Initialize))
    );
}

#[tokio::test]
async fn reboot_takes_over_boot() {
    let seq = Arc::new(Sequencer::new(bus()));
    let started = Arc::new(tokio::sync::Notify::new());
    let boot = {
        let seq = Arc::clone(&seq);
        let phases = blocking_phase(Arc::clone(&started));
        tokio::spawn(async move { seq.run(Sequence::Boot, phases, false).await })
    };
    started.notified().await;
    assert!(seq.check(Sequence::Reboot, false).is_ok());
    let ran = Arc::new(Mutex::new(Vec::new()));
    let phases = vec![Phase::new(
        "reboot",
        vec![recording_task(&ran, "reboot", 0)],
    )];
    tokio::time::timeout(
        Duration::from_secs(5),
        seq.run(Sequence::Reboot, phases, false),
    )
    .await
    .expect("in time")
    .expect("reboot ran");
    assert_eq!(*ran.lock().expect("ran"), vec!["reboot"]);
    assert_eq!(
        boot.await.expect("join"),
        Err(SequenceError::Canceled(Sequence::Boot))
    );
}

#[test]
fn durations_print_like_go() {
    assert_eq!(fmt_duration(Duration::from_micros(850)), "850µs");
    assert_eq!(fmt_duration(Duration::from_millis(12)), "12ms");
    assert_eq!(fmt_duration(Duration::from_millis(1234)), "1.234s");
    assert_eq!(fmt_duration(Duration::from_secs(2)), "2s");
    assert_eq!(fmt_duration(Duration::from_millis(123_500)), "2m3.5s");
}

#[test]
fn kernel_modules_come_from_the_config_with_their_parameters() {
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/pid1/controlplane.yaml"
    ))
    .expect("fixture");
    let plain = talos::config::Config::from_yaml(fixture.as_bytes(), "fixture").expect("parses");
    assert!(sequences::configured_modules(&plain).is_empty());
    let with_modules = fixture.replacen(
        "machine:\n",
        "machine:\n    kernel:\n        modules:\n            - name: dummy\n              parameters:\n                - numdummies=2\n                - foo=bar\n            - name: bonding\n",
        1,
    );
    let config =
        talos::config::Config::from_yaml(with_modules.as_bytes(), "patched").expect("parses");
    assert_eq!(
        sequences::configured_modules(&config),
        [
            ("dummy".to_string(), "numdummies=2 foo=bar".to_string()),
            ("bonding".to_string(), String::new())
        ]
    );
}
