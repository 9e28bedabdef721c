package dev.outbox.http.server;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Locale;

/**
 * Identifies a request's content, so that a key reused with a different request is refused (422)
 * instead of replaying a response that belongs to something else.
 */
@FunctionalInterface
public interface RequestFingerprint {

  /**
   * @param method the HTTP method
   * @param path the path inside the application
   * @param contentType the request's content type, or null
   * @param body the request body, empty for none
   * @return the fingerprint, not empty
   */
  String fingerprint(String method, String path, String contentType, byte[] body);

  /**
   * The default: hex SHA-256 over the method, the path, the content type (lower-cased, whitespace
   * removed, so {@code application/json; charset=UTF-8} equals {@code application/json;charset=utf-8})
   * and the body bytes, each length-prefixed so that no two different requests hash the same
   * input. The body is compared byte for byte: a client that re-serialises its JSON with other
   * whitespace or key order between attempts gets 422; send the same bytes on every retry (the
   * client in this module does).
   *
   * @return the fingerprint function
   */
  static RequestFingerprint sha256() {
    return (method, path, contentType, body) -> {
      MessageDigest digest;
      try {
        digest = MessageDigest.getInstance("SHA-256");
      } catch (NoSuchAlgorithmException e) {
        throw new IllegalStateException("the JVM has no SHA-256, which every Java platform must provide", e);
      }
      String normalizedType = contentType == null ? "" : contentType.toLowerCase(Locale.ROOT).replaceAll("\\s+", "");
      for (byte[] part : new byte[][] {
          method.getBytes(StandardCharsets.UTF_8), path.getBytes(StandardCharsets.UTF_8),
          normalizedType.getBytes(StandardCharsets.UTF_8), body}) {
        digest.update(java.nio.ByteBuffer.allocate(4).putInt(part.length).array());
        digest.update(part);
      }
      return "sha256:" + HexFormat.of().formatHex(digest.digest());
    };
  }
}
