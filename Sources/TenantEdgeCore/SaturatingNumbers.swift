/// Conversions from outside numbers that cannot trap. `Int(someDouble)` traps on NaN, infinity and
/// anything beyond `Int`'s range, and a trap kills the node that serves every tenant, so every
/// Double that came from a header, a config file or Redis reaches `Int` through here.
extension Int {
    /// `value` rounded toward zero and clamped to `Int`'s range; NaN is 0.
    public static func saturating(_ value: Double) -> Int {
        guard !value.isNaN else { return 0 }
        if value >= 9.223_372_036_854_775e18 { return .max }
        if value <= -9.223_372_036_854_775e18 { return .min }
        return Int(value)
    }

    /// `lhs + rhs`, or `.max`/`.min` where it would overflow (quota sums, deadlines from config).
    public static func saturatingSum(_ lhs: Int, _ rhs: Int) -> Int {
        let (sum, overflow) = lhs.addingReportingOverflow(rhs)
        guard overflow else { return sum }
        return rhs > 0 ? .max : .min
    }
}
