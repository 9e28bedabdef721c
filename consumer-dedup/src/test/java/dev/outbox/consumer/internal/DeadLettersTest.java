package dev.outbox.consumer.internal;

import static org.assertj.core.api.Assertions.assertThat;

import org.apache.kafka.common.InvalidRecordException;
import org.apache.kafka.common.errors.ClusterAuthorizationException;
import org.apache.kafka.common.errors.InvalidTopicException;
import org.apache.kafka.common.errors.RecordBatchTooLargeException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.SaslAuthenticationException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.errors.UnknownServerException;
import org.junit.jupiter.api.Test;

/**
 * G7 against losing dead letters: which failures of a dead-letter publish skip the record (recorded
 * and counted as refused) and which are retried with the partition paused. The end-to-end skip of a
 * record too large is {@code FailureClassificationIT}'s.
 */
class DeadLettersTest {

    @Test
    void onlyARefusalOfTheRecordItselfSkipsIt() {
        assertThat(DeadLetters.refusesTheRecordForGood(new RecordTooLargeException("too large")))
                .isTrue();
        assertThat(DeadLetters.refusesTheRecordForGood(new RecordBatchTooLargeException("batch too large")))
                .isTrue();
        assertThat(DeadLetters.refusesTheRecordForGood(
                        new InvalidRecordException("Compacted topic cannot accept message without key")))
                .isTrue();
    }

    /** An expired credential or a missing ACL would otherwise skip every dead letter while it lasts. */
    @Test
    void failuresOfTheDeploymentAreRetriedNotSkipped() {
        assertThat(DeadLetters.refusesTheRecordForGood(new SaslAuthenticationException("token expired")))
                .isFalse();
        assertThat(DeadLetters.refusesTheRecordForGood(new TopicAuthorizationException("no WRITE on the topic")))
                .isFalse();
        assertThat(DeadLetters.refusesTheRecordForGood(new ClusterAuthorizationException("no IDEMPOTENT_WRITE")))
                .isFalse();
        assertThat(DeadLetters.refusesTheRecordForGood(new InvalidTopicException("name too long")))
                .isFalse();
        assertThat(DeadLetters.refusesTheRecordForGood(new UnknownServerException("broker bug")))
                .isFalse();
    }
}
