package dev.outbox.http.client.internal;

import dev.outbox.core.MessageIds;
import dev.outbox.core.retry.Backoff;
import dev.outbox.core.retry.RetryBudget;
import dev.outbox.http.client.CallResult;
import dev.outbox.http.client.CircuitOpenException;
import dev.outbox.http.client.Completion;
import dev.outbox.http.client.HttpCallException;
import dev.outbox.http.client.IdempotentHttpClient;
import dev.outbox.http.client.Sleeper;
import dev.outbox.http.server.IdempotencyKey;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Clock;
import java.time.Duration;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.random.RandomGenerator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** {@link IdempotentHttpClient} on {@link HttpClient}. */
public final class RetryingClient implements IdempotentHttpClient {
  private static final Logger LOG = LoggerFactory.getLogger(RetryingClient.class);
  private static final Set<String> IDEMPOTENT_METHODS = Set.of("GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE");

  private final HttpClient http;
  private final Backoff backoff;
  private final int maxAttempts;
  private final RetryBudget budget;
  private final CircuitBreakerRegistry breakers;
  private final Duration attemptTimeout;
  private final Duration maxRetryAfter;
  private final Clock clock;
  private final Sleeper sleeper;
  private final RandomGenerator random;
  private final Set<String> keyedMethods;
  private final String log;

  public RetryingClient(
      HttpClient http, Backoff backoff, int maxAttempts, RetryBudget budget, CircuitBreakerRegistry breakers,
      Duration attemptTimeout, Duration maxRetryAfter, Clock clock, Sleeper sleeper, RandomGenerator random,
      Set<String> keyedMethods, String name) {
    this.http = http;
    this.backoff = backoff;
    this.maxAttempts = maxAttempts;
    this.budget = budget;
    this.breakers = breakers;
    this.attemptTimeout = attemptTimeout;
    this.maxRetryAfter = maxRetryAfter;
    this.clock = clock;
    this.sleeper = sleeper;
    this.random = random;
    this.keyedMethods = keyedMethods;
    this.log = "[idempotent-http-client " + name + "] ";
  }

  @Override
  public Optional<CircuitBreakerRegistry> circuitBreakers() {
    return Optional.ofNullable(breakers);
  }

  @Override
  public <T> CallResult<T> send(HttpRequest request, HttpResponse.BodyHandler<T> handler) throws IOException, InterruptedException {
    Objects.requireNonNull(request, "request may not be null");
    Optional<String> own = request.headers().firstValue(IdempotencyKey.HEADER);
    String key;
    if (own.isPresent()) {
      key = IdempotencyKey.parse(own.get());
    } else if (keyedMethods.contains(request.method().toUpperCase(Locale.ROOT))) {
      key = MessageIds.next().toString();
    } else {
      key = null;
    }
    return run(request, handler, key);
  }

  @Override
  public <T> CallResult<T> send(HttpRequest request, HttpResponse.BodyHandler<T> handler, String idempotencyKey)
      throws IOException, InterruptedException {
    Objects.requireNonNull(request, "request may not be null");
    Objects.requireNonNull(idempotencyKey, "idempotencyKey may not be null; use send(request, handler) to mint one");
    IdempotencyKey.quote(idempotencyKey); // validates
    return run(request, handler, idempotencyKey);
  }

  private <T> CallResult<T> run(HttpRequest original, HttpResponse.BodyHandler<T> handler, String key)
      throws IOException, InterruptedException {
    Objects.requireNonNull(handler, "handler may not be null");
    HttpRequest.Builder copy = HttpRequest.newBuilder(original, (name, value) -> !name.equalsIgnoreCase(IdempotencyKey.HEADER));
    if (key != null) {
      copy.header(IdempotencyKey.HEADER, IdempotencyKey.quote(key));
    }
    if (original.timeout().isEmpty()) {
      copy.timeout(attemptTimeout);
    }
    HttpRequest request = copy.build();
    String method = request.method().toUpperCase(Locale.ROOT);
    boolean mayRetry = key != null || IDEMPOTENT_METHODS.contains(method);
    String host = hostOf(request.uri());
    CircuitBreaker breaker = breakers == null ? null : breakers.circuitBreaker(host);
    budget.recordRequest();

    int attempts = 0;
    HttpResponse<T> response = null;
    IOException failure = null;
    while (true) {
      if (breaker != null && !breaker.tryAcquirePermission()) {
        throw new CircuitOpenException("The circuit breaker for " + host + " is " + breaker.getState()
            + " after repeated failures, so " + method + " " + request.uri() + " was not sent"
            + (attempts > 0 ? " again after " + attempts + " attempt(s)" : "")
            + ". It lets trial calls through after its wait in the open state; retry the operation later"
            + (key != null ? " with the same Idempotency-Key '" + key + "'" : "") + ".", failure, host, attempts, key);
      }
      attempts++;
      long start = System.nanoTime();
      try {
        response = http.send(request, handler);
        failure = null;
      } catch (IOException e) {
        response = null;
        failure = e;
      } catch (InterruptedException | RuntimeException e) {
        if (breaker != null) {
          breaker.releasePermission();
        }
        throw e;
      }
      long took = System.nanoTime() - start;
      if (breaker != null) {
        if (failure != null) {
          breaker.onError(took, TimeUnit.NANOSECONDS, failure);
        } else if (response.statusCode() >= 500) {
          breaker.onError(took, TimeUnit.NANOSECONDS, new ServerError(response.statusCode()));
        } else {
          breaker.onSuccess(took, TimeUnit.NANOSECONDS);
        }
      }
      if (response != null && !retryable(response, key)) {
        return new CallResult<>(response, attempts, key, Completion.RESPONSE);
      }
      if (!mayRetry) {
        return end(response, failure, attempts, key, Completion.NOT_RETRIED, method, request.uri());
      }
      if (attempts >= maxAttempts) {
        return end(response, failure, attempts, key, Completion.ATTEMPTS_EXHAUSTED, method, request.uri());
      }
      Duration delay = jitter(attempts - 1);
      if (response != null) {
        Duration asked = RetryAfter.parse(response.headers().firstValue("Retry-After").orElse(null), clock);
        if (asked != null) {
          if (asked.compareTo(maxRetryAfter) > 0) {
            return end(response, null, attempts, key, Completion.RETRY_AFTER_TOO_LONG, method, request.uri());
          }
          if (asked.compareTo(delay) > 0) {
            delay = asked;
          }
        }
      }
      if (!budget.tryAcquireRetry()) {
        return end(response, failure, attempts, key, Completion.BUDGET_EXHAUSTED, method, request.uri());
      }
      if (LOG.isDebugEnabled()) {
        LOG.debug("{}retrying {} {} (key {}) in {} ms after attempt {}: {}", log, method, request.uri(), key, delay.toMillis(),
            attempts, failure != null ? failure.toString() : "status " + response.statusCode());
      }
      sleeper.sleep(delay);
    }
  }

  private Duration jitter(int retry) {
    if (random == null) {
      return backoff.delay(retry, ThreadLocalRandom.current());
    }
    synchronized (random) {
      return backoff.delay(retry, random);
    }
  }

  private static boolean retryable(HttpResponse<?> response, String key) {
    int status = response.statusCode();
    if (status >= 500) {
      return status != 501 && status != 505;
    }
    if (status == 429) {
      return true;
    }
    if (status == 409 && key != null) {
      boolean replay = response.headers().firstValue(IdempotencyKey.REPLAYED_HEADER).map("true"::equalsIgnoreCase).orElse(false);
      return !replay;
    }
    return false;
  }

  private <T> CallResult<T> end(
      HttpResponse<T> response, IOException failure, int attempts, String key, Completion completion, String method, URI uri)
      throws HttpCallException {
    if (response != null) {
      return new CallResult<>(response, attempts, key, completion);
    }
    String why = switch (completion) {
      case NOT_RETRIED -> " and was not retried: a " + method + " without an Idempotency-Key may already have taken"
          + " effect. Send it with a key to make it safely retryable";
      case ATTEMPTS_EXHAUSTED -> " after " + attempts + " attempts (maxAttempts)";
      case BUDGET_EXHAUSTED -> " after " + attempts + " attempt(s); the retry budget is spent because many calls are"
          + " failing; the target is likely down or overloaded";
      default -> " after " + attempts + " attempt(s)";
    };
    throw new HttpCallException(log + method + " " + uri + " failed" + why
        + (key != null ? "; retry later with the same Idempotency-Key '" + key + "' to learn the outcome" : "")
        + ". Last error: " + failure, failure, attempts, key, completion);
  }

  private static String hostOf(URI uri) {
    int port = uri.getPort();
    if (port < 0) {
      port = "https".equalsIgnoreCase(uri.getScheme()) ? 443 : 80;
    }
    return uri.getHost() + ":" + port;
  }

  /** Records a 5xx response as a failure in the circuit breaker. */
  static final class ServerError extends Exception {
    ServerError(int status) {
      super("HTTP " + status, null, false, false);
    }
  }

}
