package dev.outbox.http.server.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class HeaderJsonTest {
  @Test
  void roundTripsNamesAndValuesWithSpecialCharacters() {
    Map<String, List<String>> headers = new LinkedHashMap<>();
    headers.put("Content-Type", List.of("application/json; charset=\"utf-8\""));
    headers.put("Link", List.of("</a>; rel=next", "back\\slash\ttab\u0001"));
    headers.put("Empty", List.of());
    assertThat(HeaderJson.read(HeaderJson.write(headers))).isEqualTo(headers);
    // the shape PostgreSQL's jsonb gives back: spaces after separators
    assertThat(HeaderJson.read("{\"A\": [\"1\", \"2\"], \"B\": []}")).isEqualTo(Map.of("A", List.of("1", "2"), "B", List.of()));
    assertThatThrownBy(() -> HeaderJson.read("{\"A\": \"1\"}")).hasMessageContaining("expected [");
  }
}
