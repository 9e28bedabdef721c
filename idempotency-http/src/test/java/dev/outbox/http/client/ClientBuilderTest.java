package dev.outbox.http.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.junit.jupiter.api.Test;

/** Bad configuration fails at build time, naming the setting, the value and the default. */
class ClientBuilderTest {
  @Test
  void rejectsOutOfRangeValues() {
    var b = IdempotentHttpClient.builder();
    assertThatThrownBy(() -> b.maxAttempts(0)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("maxAttempts").hasMessageContaining("got 0").hasMessageContaining("default is 5");
    assertThatThrownBy(() -> b.attemptTimeout(Duration.ZERO)).hasMessageContaining("attemptTimeout");
    assertThatThrownBy(() -> b.maxRetryAfter(Duration.ofSeconds(-1))).hasMessageContaining("maxRetryAfter");
    assertThatThrownBy(() -> b.keyedMethods("PO ST")).hasMessageContaining("'PO ST'");
    assertThatThrownBy(() -> b.idempotentTargets("ftp://files.internal")).hasMessageContaining("idempotentTargets")
        .hasMessageContaining("'ftp://files.internal'");
    assertThatThrownBy(() -> b.idempotentTargets("payments.internal/v1")).hasMessageContaining("host or host:port");
    assertThatThrownBy(() -> b.idempotentTargets(" ")).hasMessageContaining("blank");
    assertThatThrownBy(() -> b.idempotentTargets("https://api.example.com/v1?x=1")).hasMessageContaining("without query");
    assertThatThrownBy(() -> b.backoff(null)).isInstanceOf(NullPointerException.class).hasMessageContaining("backoff");
  }

  @Test
  void defaultsBuildWithBreakersAndCanTurnThemOff() {
    assertThat(IdempotentHttpClient.builder().build().circuitBreakers()).isPresent();
    assertThat(IdempotentHttpClient.builder().noCircuitBreaker().build().circuitBreakers()).isEmpty();
  }
}
