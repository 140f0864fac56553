/// HTTP dates (RFC 9110 5.6.7). Only IMF-fixdate is produced; IMF-fixdate and the obsolete RFC 850
/// and asctime forms are accepted. Anything else is nil, which callers treat as "in the past" for
/// `Expires`, as RFC 9111 5.3 requires. Years outside 1–9999 are not dates: a header claiming the
/// year 10^12 would otherwise overflow the day arithmetic and trap.
public enum HTTPDate {
    /// Latest instant `format` writes (9999-12-31T23:59:59Z); later or non-finite values are clamped.
    static let latest: Double = 253_402_300_799
    /// Earliest instant `format` writes (0001-01-01T00:00:00Z).
    static let earliest: Double = -62_135_596_800

    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    private static let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
    private static let monthNames = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]

    /// Seconds since the epoch, or nil when `text` is not an HTTP date.
    public static func parse(_ text: String) -> Double? {
        let tokens = text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "-" }).map(String.init)
        // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT -> [Sun, 06, Nov, 1994, 08:49:37, GMT]
        // RFC 850:     Sunday, 06-Nov-94 08:49:37 GMT -> [Sunday, 06, Nov, 94, 08:49:37, GMT]
        // asctime:     Sun Nov  6 08:49:37 1994 -> [Sun, Nov, 6, 08:49:37, 1994]
        if tokens.count == 6, tokens[5] == "GMT" {
            // Four digits (IMF-fixdate) or two (RFC 850); a three-digit year is neither.
            guard [2, 4].contains(tokens[3].utf8.count), let day = Int(tokens[1]), var year = Int(tokens[3]) else {
                return nil
            }
            if tokens[3].count == 2 { year += year < 70 ? 2000 : 1900 }
            return compose(year: year, month: tokens[2], day: day, time: tokens[4])
        }
        if tokens.count == 5, tokens[4].utf8.count == 4, let day = Int(tokens[2]), let year = Int(tokens[4]) {
            return compose(year: year, month: tokens[1], day: day, time: tokens[3])
        }
        return nil
    }

    /// IMF-fixdate for `seconds` since the epoch.
    public static func format(_ seconds: Double) -> String {
        let total = Int.saturating(min(max(seconds.isNaN ? 0 : seconds, earliest), latest).rounded(.down))
        let days = total >= 0 ? total / 86_400 : (total - 86_399) / 86_400
        let secondOfDay = total - days * 86_400
        let (year, month, day) = civil(fromDays: days)
        let weekday = weekdays[((days % 7) + 7) % 7]
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let fourDigitYear =
            year < 1000 ? String(repeating: "0", count: year < 10 ? 3 : year < 100 ? 2 : 1) + "\(year)" : "\(year)"
        return "\(weekday), \(two(day)) \(monthNames[month - 1]) \(fourDigitYear) "
            + "\(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60)) GMT"
    }

    private static func compose(year: Int, month: String, day: Int, time: String) -> Double? {
        guard (1...9999).contains(year), let monthIndex = months.firstIndex(of: month.lowercased()),
            (1...31).contains(day)
        else { return nil }
        let fields = time.split(separator: ":", omittingEmptySubsequences: false)
        guard fields.allSatisfy({ (1...2).contains($0.utf8.count) }) else { return nil }
        let clock = fields.compactMap { Int($0) }
        guard clock.count == 3, (0...23).contains(clock[0]), (0...59).contains(clock[1]), (0...60).contains(clock[2])
        else {
            return nil
        }
        let days = daysFromCivil(year: year, month: monthIndex + 1, day: day)
        return Double(days * 86_400 + clock[0] * 3600 + clock[1] * 60 + clock[2])
    }

    // Howard Hinnant's days_from_civil / civil_from_days: proleptic Gregorian, exact for any year.
    private static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    private static func civil(fromDays days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
