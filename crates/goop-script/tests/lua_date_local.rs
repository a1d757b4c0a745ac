//! `os.date` in the host's local time zone: its own test process, since it sets `TZ`.

mod common;
use common::*;

#[test]
fn os_date_follows_the_hosts_zone_and_its_summer_time() {
    // Central European Time, as a POSIX rule so no zone database is needed; set before the
    // engine reads the zone, in a process that runs no other test.
    std::env::set_var("TZ", "CET-1CEST,M3.5.0,M10.5.0/3");
    let winter = 1_709_211_909; // 2024-02-29 13:05:09 UTC
    let summer = 1_719_666_309; // 2024-06-29 13:05:09 UTC
    let checks = [
        (format!("os.date('%F %T %z', {winter})"), "2024-02-29 14:05:09 +0100"),
        (format!("os.date('%F %T %z', {summer})"), "2024-06-29 15:05:09 +0200"),
        (format!("os.date('!%T', {summer})"), "13:05:09"),
        (format!("tostring(os.date('*t', {winter}).isdst) .. os.date('*t', {winter}).hour"), "false14"),
        (format!("tostring(os.date('*t', {summer}).isdst) .. os.date('*t', {summer}).hour"), "true15"),
    ];
    for (expr, want) in checks {
        assert_eq!(eval(&expr).unwrap().as_deref(), Some(want), "{expr}");
    }
}
