//! `os.date` with the C `strftime` formats that scripts written for goop2 (gopher-lua) use.

mod common;
use common::*;

#[test]
fn os_date_takes_the_c_formats() {
    // 2024-02-29 13:05:09 UTC: a Thursday, day 60 of a leap year.
    let t = 1_709_211_909;
    let checks = [
        ("!%F %T", "2024-02-29 13:05:09"),
        ("!%D %R", "02/29/24 13:05"),
        ("!%e|%j|%p|%s|%u|%w", "29|060|PM|1709211909|4|4"),
        ("!%a %A %b %B", "Thu Thursday Feb February"),
        ("!%d/%m/%y %Y %H %I %M %S", "29/02/24 2024 13 01 05 09"),
        ("!%c|%x|%X", "Thu Feb 29 13:05:09 2024|02/29/24|13:05:09"),
        ("!%Z %z %%", "UTC +0000 %"),
        ("!%Y-%m-%d %H:%M:%S UTC", "2024-02-29 13:05:09 UTC"),
        // Unknown conversions are copied as written, as gopher-lua does.
        ("!%Q %E %5 100%", "%Q %E %5 100%"),
    ];
    for (format, want) in checks {
        assert_eq!(eval(&format!("os.date('{format}', {t})")).unwrap().as_deref(), Some(want), "{format}");
    }
}

#[test]
fn os_date_gives_tables_and_local_time() {
    let utc = "(function() local d = os.date('!*t', 1709211909) \
        return table.concat({d.year, d.month, d.day, d.hour, d.min, d.sec, d.wday, d.yday, tostring(d.isdst)}, ' ') end)()";
    assert_eq!(eval(utc).unwrap().as_deref(), Some("2024 2 29 13 5 9 5 60 false"));
    // Local time agrees with itself, whatever the host's zone; a UTC table round-trips through
    // os.time (Luau's os.time reads a table as UTC).
    let local = "(function() local d = os.date('*t', 1709211909) \
        return os.date('%Y-%m-%d %H:%M:%S', 1709211909) == string.format('%04d-%02d-%02d %02d:%02d:%02d', d.year, d.month, d.day, d.hour, d.min, d.sec) \
            and os.time(os.date('!*t', 1709211909)) == 1709211909 end)()";
    assert_eq!(eval(local).unwrap().as_deref(), Some("true"));
    assert_eq!(eval("type(os.date()) .. type(os.date('*t').year)").unwrap().as_deref(), Some("stringnumber"));
    assert_eq!(eval("os.date('!%Y', 1e300)").unwrap().as_deref(), Some("nil"));
}

#[test]
fn os_date_formats_are_bounded() {
    // 256 bytes of format is the most: 127 `%c` (24 bytes of text each) fill it.
    let longest = "os.date('!' .. ('%c'):rep(127) .. 'Y', 0)";
    let text = eval(longest).unwrap().unwrap_or_default();
    assert_eq!(text.len(), 127 * 24 + 1, "{text}");
    let err = eval("os.date(('%c'):rep(128) .. 'x', 0)").unwrap_err();
    assert!(err.to_string().contains("os.date: format is longer than 256 bytes"), "{err}");
}
