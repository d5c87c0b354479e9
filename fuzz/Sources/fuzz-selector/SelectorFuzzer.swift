import FuzzSupport
import TallyStorage

// Series selectors (`match[]` of the admin and query endpoints): parsing, regex checking, and the
// empty-value test a deletion applies. What parses must print (`LabelMatcher.description`, as errors
// and `tally` show selectors) to text that parses back to the same matchers. Each regex also finds
// its groups (as `label_replace` does) in a few values: a value has groups exactly when it matches,
// and group 0 is the whole value.

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: OpaquePointer?, _ argv: OpaquePointer?) -> CInt {
    writeSeedsIfAsked {
        let selectors = [
            "up",
            #"container_cpu_usage_seconds_total{namespace="kube-system",pod=~"coredns-.*"}"#,
            #"{__name__=~"node_.+_hourly_cost", provider_id!="", instance!~'ip-10-.*|ip-192-.*'}"#,
            #"kube_pod_labels{label_app="ünïcödé\n\"quoted\"\\", namespace=~"a|b|c"}"#,
            #"{job=~"(?i)KubeCost[0-9]{1,3}\.svc"}"#,
        ]
        return Dictionary(uniqueKeysWithValues: selectors.enumerated().map { ("selector-\($0)", Array($1.utf8)) })
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let matchers = try? SelectorParser.parse(text) else { return 0 }
    for matcher in matchers {
        _ = matcher.predicate()("")
        _ = matcher.exactValues
    }
    for matcher in matchers where matcher.kind == .regex || matcher.kind == .notRegex {
        guard let regex = LinearRegex(matcher.value) else { continue }
        for value in ["", matcher.name, matcher.value, matcher.value + matcher.value] {
            let groups = regex.captures(value)
            precondition((groups != nil) == regex.matches(value), "\(matcher): groups and match disagree on \(value)")
            if let groups { precondition(groups.count == regex.groupNames.count + 1 && groups[0] == value, "\(matcher) on \(value): \(groups)") }
        }
    }
    let printed = "{" + matchers.map(\.description).joined(separator: ",") + "}"
    do {
        let reparsed = try SelectorParser.parse(printed)
        precondition(reparsed == matchers, "\(printed) parses to \(reparsed), not \(matchers)")
    } catch {
        preconditionFailure("\(printed), printed from \(matchers), does not parse: \(error)")
    }
    return 0
}
