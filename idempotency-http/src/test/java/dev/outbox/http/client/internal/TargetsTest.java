package dev.outbox.http.client.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpTimeoutException;
import java.util.List;
import org.junit.jupiter.api.Test;

class TargetsTest {

    @Test
    void hostsHostPortsAndBaseUrisMatchWhatTheyName() {
        Targets t = Targets.parse(List.of("orders.internal", "payments.internal:8443", "https://api.example.com/v1"));
        assertThat(t.honoursKey(URI.create("http://orders.internal/orders"))).isTrue();
        assertThat(t.honoursKey(URI.create("https://ORDERS.internal:9000/x"))).isTrue();
        assertThat(t.honoursKey(URI.create("https://payments.internal:8443/payments")))
                .isTrue();
        assertThat(t.honoursKey(URI.create("https://payments.internal/payments")))
                .isFalse();
        assertThat(t.honoursKey(URI.create("https://api.example.com/v1"))).isTrue();
        assertThat(t.honoursKey(URI.create("https://api.example.com:443/v1/charges")))
                .isTrue();
        assertThat(t.honoursKey(URI.create("https://api.example.com/v10/charges")))
                .isFalse();
        assertThat(t.honoursKey(URI.create("http://api.example.com/v1/charges")))
                .isFalse();
        assertThat(t.honoursKey(URI.create("https://api.example.com/v2/charges")))
                .isFalse();
        assertThat(t.honoursKey(URI.create("https://legacy.internal/orders"))).isFalse();
        assertThat(Targets.parse(List.of()).honoursKey(URI.create("http://orders.internal/orders")))
                .isFalse();
        assertThat(Targets.parse(List.of("http://127.0.0.1:8080/"))
                        .honoursKey(URI.create("http://127.0.0.1:8080/orders")))
                .isTrue();
    }

    @Test
    void onlyAFailureToConnectProvesNothingWasSent() {
        assertThat(RetryingClient.neverSent(new ConnectException("Connection refused")))
                .isTrue();
        assertThat(RetryingClient.neverSent(new HttpConnectTimeoutException("connect timed out")))
                .isTrue();
        assertThat(RetryingClient.neverSent(new IOException("wrapped", new ConnectException("refused"))))
                .isTrue();
        assertThat(RetryingClient.neverSent(new HttpTimeoutException("request timed out")))
                .isFalse();
        assertThat(RetryingClient.neverSent(new IOException("Connection reset")))
                .isFalse();
    }
}
