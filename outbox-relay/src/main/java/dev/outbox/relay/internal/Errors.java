package dev.outbox.relay.internal;

import org.apache.kafka.common.InvalidRecordException;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.ApiException;
import org.apache.kafka.common.errors.AuthenticationException;
import org.apache.kafka.common.errors.ClusterAuthorizationException;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.InvalidTopicException;
import org.apache.kafka.common.errors.OutOfOrderSequenceException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.RecordBatchTooLargeException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.errors.UnknownProducerIdException;

/** How the relay reacts to a send failure. */
final class Errors {
    private Errors() {}

    /**
     * @return whether the record itself can never be published, whatever the broker's health: the
     *     row is parked. Unknown topic or partition is not among them: it is retriable (metadata may
     *     lag behind a topic creation).
     */
    static boolean isPoison(Throwable t) {
        return t instanceof RecordTooLargeException
                || t instanceof RecordBatchTooLargeException
                || t instanceof InvalidTopicException
                || t instanceof TopicAuthorizationException
                || t instanceof SerializationException
                || t instanceof InvalidRecordException
                || t instanceof MalformedRow;
    }

    /**
     * The topic's metadata did not arrive within {@code max.block.ms} (a topic that does not exist on
     * a broker that does not create topics): the row's own failure, counted as an attempt when Kafka
     * answered other records meanwhile. Every other retriable error (a partition without a leader, a
     * broker down, a request or delivery timeout on an existing topic) is not counted.
     */
    static final class TopicUnavailable extends RuntimeException {
        TopicUnavailable(String topic, RuntimeException cause) {
            super("no metadata for topic " + topic + ": " + describe(cause), cause);
        }
    }

    /** A row whose data cannot make a record (its {@code headers} are not a JSON object of strings): poison. */
    static final class MalformedRow extends RuntimeException {
        MalformedRow(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /**
     * @return whether the producer is unusable after this error and must be replaced: the idempotent
     *     producer's sequence state is broken, or the client failed outside the Kafka protocol
     */
    static boolean isFatal(Throwable t) {
        return t instanceof OutOfOrderSequenceException
                || t instanceof ProducerFencedException
                || t instanceof InvalidProducerEpochException
                || t instanceof UnknownProducerIdException
                || t instanceof ClusterAuthorizationException
                || t instanceof AuthenticationException
                || t instanceof IllegalStateException
                || (t instanceof KafkaException && !(t instanceof ApiException));
    }

    /**
     * @return whether the broker fenced the producer's transactional id: a relay that claimed the
     *     shard later initialised it, so this relay no longer owns the shard
     */
    static boolean isFenced(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof ProducerFencedException || c instanceof InvalidProducerEpochException) {
                return true;
            }
        }
        return false;
    }

    /** @return {@code ExceptionClass: message}, what {@code last_error} keeps */
    static String describe(Throwable t) {
        String m = t.getMessage();
        return t.getClass().getName() + (m != null ? ": " + m : "");
    }
}
