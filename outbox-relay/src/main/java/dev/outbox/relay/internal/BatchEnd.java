package dev.outbox.relay.internal;

import dev.outbox.core.internal.PrefixedLog;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import java.util.concurrent.TimeUnit;

/**
 * Writes back what one shard's finished batch came to: ends its Kafka transaction (transactional
 * mode) and says what to record of its failed rows in the database, fenced by the lease. {@link ShardWorker} acts on
 * what it reports (a fenced producer or a lost lease drops the shard).
 */
final class BatchEnd {
    private final int shard;
    private final long epoch;
    private final RelayConfig config;
    private final ShardPublisher publisher;
    private final ShardServices relay;
    private final RelayMetrics metrics;
    private final PrefixedLog log;
    private final CircuitBreaker breaker;

    BatchEnd(ShardServices services, ShardPublisher publisher, int shard, long epoch) {
        this.shard = shard;
        this.epoch = epoch;
        this.config = services.config();
        this.publisher = publisher;
        this.relay = services;
        this.metrics = services.metrics();
        this.log = services.log();
        this.breaker = services.breaker();
    }

    /**
     * Tells the breaker (whose permit the batch held) and the metrics what the batch came to, and
     * replaces a producer its failure left unusable.
     *
     * @param elapsedNanos since the batch started
     */
    void report(Batch batch, BatchOutcome outcome, long elapsedNanos) {
        Throwable failure = outcome.failure();
        switch (outcome.breaker()) {
            case SUCCESS -> breaker.onSuccess(elapsedNanos, TimeUnit.NANOSECONDS);
            case RELEASE -> breaker.releasePermission();
            case FAILURE -> breaker.onError(elapsedNanos, TimeUnit.NANOSECONDS, failure);
        }
        if (failure != null) {
            metrics.retriable.increment();
            if (outcome.fatal()) {
                publisher.replace(batch.producer, failure);
            }
        } else if (batch.sentRows > 0) {
            relay.kafkaAnswered().run();
        }
    }

    /**
     * Ends the batch's Kafka transaction (transactional mode): commits it when every record sent was
     * acknowledged, else aborts it, so that none of the batch's records becomes visible to {@code
     * read_committed} consumers and none of its rows is deleted. A failed record's error stays with
     * its row (a poison row is parked, a retriable failure backs off as in the idempotent mode); what
     * the other records report after the first failure is the transaction's state, not theirs, and is
     * dropped when a poison row explains the abort. A commit that fails is a retriable failure of
     * every row sent.
     *
     * @return null, or when the producer was fenced (the shard is to be dropped) what it could not do
     */
    String settle(Batch batch) {
        Throwable first = batch.firstError();
        Throwable commitFailure = null;
        if (first == null) {
            try {
                publisher.commit(batch.producer);
                return null;
            } catch (RuntimeException e) {
                first = commitFailure = e;
            }
        }
        boolean fenced = commitFailure != null ? Errors.isFenced(commitFailure) : anyFenced(batch.errors);
        batch.aborted(commitFailure);
        publisher.abort(batch.producer, first);
        metrics.aborted.increment();
        if (fenced) {
            return "commit a batch of " + batch.rows.size() + " rows (" + Errors.describe(first) + ")";
        }
        return null;
    }

    private static boolean anyFenced(Throwable[] errors) {
        for (Throwable e : errors) {
            if (e != null && Errors.isFenced(e)) {
                return true;
            }
        }
        return false;
    }

    /**
     * @return the shard's request for the relay's failure queue (one fenced statement for many shards):
     *     park the poison rows, count an attempt of the rows that failed retriably, parking those that
     *     reached maxAttempts
     */
    ShardRows.Failure failure(Batch.Failures f) {
        return new ShardRows.Failure(shard, epoch, f.ids(), f.errors(), f.park());
    }

    /**
     * Logs and counts what the failure statement did to the batch's rows.
     *
     * @param parked run for each row parked
     * @return null, or when the lease was lost (the shard is to be dropped) what it could not do
     */
    String recorded(Batch batch, Batch.Failures f, Db.Failed result, Runnable parked) {
        if (!result.leaseHeld()) {
            return "record the failure of " + f.ids().length + " rows";
        }
        for (Db.FailedRow r : result.rows()) {
            int i = f.index().get(r.id());
            OutboxRow row = batch.rows.get(i);
            String error = Errors.describe(batch.errors[i]);
            boolean isPoison = Errors.isPoison(batch.errors[i]);
            if (isPoison) {
                metrics.nonRetriable.increment();
            }
            if (r.parked()) {
                parked.run();
                metrics.parked.increment();
                log.error(
                        "shard {}: parked outbox row {} (message {}, topic {}, key {}) after {} attempt(s){}: {}; requeue it"
                                + " once the cause is fixed",
                        shard,
                        row.id(),
                        row.messageId(),
                        row.topic(),
                        row.key(),
                        r.attempts(),
                        isPoison ? "" : " (max attempts " + config.maxAttempts() + ")",
                        error);
            }
        }
        return null;
    }
}
