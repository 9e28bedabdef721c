package dev.outbox.http.server.internal;

import dev.outbox.http.server.IdempotencyKey;
import dev.outbox.http.server.StoredResponse;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The response side of {@code IdempotencyFilter}: what is kept of a handler's response for replay,
 * and how a first response or a replay is sent once the key's transaction has ended.
 */
public final class Responses {

  private Responses() {}

  /**
   * @param capturing the handler's response, body held back
   * @param storedHeaders the names of the headers to keep; {@code Content-Type} is read from the
   *     response's content type
   * @return the status, the named headers the handler set, and the body
   */
  public static StoredResponse capture(CapturingResponse capturing, List<String> storedHeaders) {
    Map<String, List<String>> headers = new LinkedHashMap<>();
    for (String name : storedHeaders) {
      if (name.equalsIgnoreCase("Content-Type")) {
        String type = capturing.getContentType();
        if (type != null) {
          headers.put("Content-Type", List.of(type));
        }
        continue;
      }
      Collection<String> values = capturing.getHeaders(name);
      if (values != null && !values.isEmpty()) {
        headers.put(name, new ArrayList<>(values));
      }
    }
    return new StoredResponse(capturing.getStatus(), headers, capturing.body());
  }

  /** Sends the body held back from the handler, with its length. */
  public static void sendBody(HttpServletResponse response, byte[] body) throws IOException {
    response.setContentLength(body.length);
    if (body.length > 0) {
      response.getOutputStream().write(body);
    }
  }

  /** Sends a stored response, marked {@code Idempotent-Replayed: true}. */
  public static void replay(HttpServletResponse response, StoredResponse stored) throws IOException {
    response.setStatus(stored.status());
    stored.headers().forEach((name, values) -> {
      if (name.equalsIgnoreCase("Content-Type")) {
        response.setContentType(values.get(0));
      } else {
        values.forEach(v -> response.addHeader(name, v));
      }
    });
    response.setHeader(IdempotencyKey.REPLAYED_HEADER, "true");
    sendBody(response, stored.body());
  }

  /** Drops what the handler set on a response that has not been sent yet. */
  public static void resetIfPossible(HttpServletResponse response) {
    if (!response.isCommitted()) {
      response.reset();
    }
  }
}
