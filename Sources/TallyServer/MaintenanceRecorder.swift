import Logging
import TallyStorage

/// Runs compaction and retention for the server's schedule and its admin calls, and records every
/// maintenance run, block cuts included: counted and timed in the metrics, and logged one event a line
/// (a merged group, a dropped block, a cut block, a failure, a run's summary), each with its fields.
struct MaintenanceRecorder: Sendable {
    let metrics: ServerMetrics
    let logger: Logger

    /// `cleaningTombstones` also rewrites each block with any deletion (`clean_tombstones`).
    func compact(_ db: TenantDatabase, _ trigger: MaintenanceTrigger, cleaningTombstones: Bool = false) throws -> CompactionReport {
        let clock = ContinuousClock()
        let started = clock.now
        let report: CompactionReport
        do {
            report = try db.compact(cleaningTombstones: cleaningTombstones)
        } catch {
            metrics.compaction(trigger, clock.now - started, failed: true)
            logger.error("compaction failed", metadata: ["tenant": "\(db.tenant)", "trigger": "\(trigger.rawValue)", "error": "\(error)"])
            throw error
        }
        let duration = clock.now - started
        metrics.compaction(trigger, duration, failed: !report.failures.isEmpty)
        for (group, child) in zip(report.groups, report.written) {
            logger.info("compacted group", metadata: [
                "tenant": "\(db.tenant)", "trigger": "\(trigger.rawValue)", "reason": "\(group.reason.rawValue)",
                "parents": "\(group.parents.map(\.ulid).joined(separator: ","))", "child": "\(child?.ulid ?? "none")",
                "min_time": "\(child?.minTime ?? group.minTime)", "max_time": "\(child?.maxTime ?? group.maxTime)"])
        }
        for failure in report.failures {
            logger.error("compaction left blocks as they were", metadata: ["tenant": "\(db.tenant)", "trigger": "\(trigger.rawValue)", "group": "\(failure)"])
        }
        if !report.groups.isEmpty || !report.failures.isEmpty {
            logger.info("compaction done", metadata: [
                "tenant": "\(db.tenant)", "trigger": "\(trigger.rawValue)", "blocks_before": "\(report.blocksBefore)",
                "blocks_after": "\(report.blocksAfter)", "merged_groups": "\(report.groups.count)", "failed_groups": "\(report.failures.count)",
                "duration_seconds": "\(duration.seconds)"])
        }
        return report
    }

    func applyRetention(_ db: TenantDatabase, keep: Int64, _ trigger: MaintenanceTrigger) throws -> [BlockMeta] {
        let clock = ContinuousClock()
        let started = clock.now
        let dropped: [BlockMeta]
        do {
            dropped = try db.applyRetention(keep: keep)
        } catch {
            metrics.retention(trigger, clock.now - started, failed: true)
            logger.error("retention failed", metadata: ["tenant": "\(db.tenant)", "trigger": "\(trigger.rawValue)", "error": "\(error)"])
            throw error
        }
        let duration = clock.now - started
        metrics.retention(trigger, duration, failed: false)
        for block in dropped {
            logger.info("retention dropped block", metadata: [
                "tenant": "\(db.tenant)", "trigger": "\(trigger.rawValue)", "ulid": "\(block.ulid)",
                "min_time": "\(block.minTime)", "max_time": "\(block.maxTime)"])
        }
        if !dropped.isEmpty {
            logger.info("retention done", metadata: ["tenant": "\(db.tenant)", "trigger": "\(trigger.rawValue)", "dropped": "\(dropped.count)",
                                                     "duration_seconds": "\(duration.seconds)"])
        }
        return dropped
    }

    /// A block cut the storage did (`StorageOptions.observeCut`).
    func blockCut(_ outcome: BlockCutOutcome) {
        switch outcome.result {
        case let .success(blocks):
            metrics.blockCut(outcome.duration, failed: false)
            for meta in blocks {
                let lateSamples = meta.compaction.hints?.contains("from-out-of-order") == true
                logger.info(lateSamples ? "cut out-of-order block" : "cut block", metadata: [
                    "tenant": "\(outcome.tenant)", "ulid": "\(meta.ulid)", "min_time": "\(meta.minTime)", "max_time": "\(meta.maxTime)",
                    "series": "\(meta.stats.numSeries)", "samples": "\(meta.stats.numSamples)", "duration_seconds": "\(outcome.duration.seconds)"])
            }
        case let .failure(error):
            metrics.blockCut(outcome.duration, failed: true)
            logger.error("block cut failed, the head keeps the data", metadata: ["tenant": "\(outcome.tenant)", "error": "\(error)"])
        }
    }
}

private extension Duration {
    /// As a plain number, so the log field has no unit word in it.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
