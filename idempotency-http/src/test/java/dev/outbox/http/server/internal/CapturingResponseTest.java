package dev.outbox.http.server.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.springframework.mock.web.MockHttpServletResponse;

class CapturingResponseTest {

    /**
     * Servlet 6.1's redirect forms are captured like {@code sendRedirect(String)}: status and
     * {@code Location} set, nothing sent to the container's response, which stays uncommitted
     * until the transaction has. Before, the wrapper passed them to the container, which could send
     * the redirect (with a body, on Tomcat with {@code sendRedirectBody}) before the commit.
     */
    @Test
    void servlet61RedirectsAreHeldBackLikeTheOthers() throws Exception {
        MockHttpServletResponse container = new MockHttpServletResponse();
        CapturingResponse captured = new CapturingResponse(container);
        captured.getWriter().write("draft");
        captured.sendRedirect("/orders/42", 303);
        assertThat(captured.getStatus()).isEqualTo(303);
        assertThat(captured.getHeader("Location")).isEqualTo("/orders/42");
        assertThat(captured.body()).isEmpty();
        assertThat(container.isCommitted())
                .as("the container's response committed")
                .isFalse();
        assertThat(container.getContentAsByteArray())
                .as("what reached the container's body")
                .isEmpty();

        CapturingResponse keeping = new CapturingResponse(new MockHttpServletResponse());
        keeping.getWriter().write("see other");
        keeping.sendRedirect("/orders/43", false);
        assertThat(keeping.getStatus()).isEqualTo(302);
        assertThat(new String(keeping.body(), StandardCharsets.UTF_8)).isEqualTo("see other");

        CapturingResponse both = new CapturingResponse(new MockHttpServletResponse());
        both.sendRedirect("/orders/44", 307, true);
        assertThat(both.getStatus()).isEqualTo(307);
        assertThat(both.getHeader("Location")).isEqualTo("/orders/44");
    }
}
