package dev.outbox.http.server.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.outbox.http.server.StoredResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;
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
        CapturingResponse captured = new CapturingResponse(container, 1024);
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

        CapturingResponse keeping = new CapturingResponse(new MockHttpServletResponse(), 1024);
        keeping.getWriter().write("see other");
        keeping.sendRedirect("/orders/43", false);
        assertThat(keeping.getStatus()).isEqualTo(302);
        assertThat(new String(keeping.body(), StandardCharsets.UTF_8)).isEqualTo("see other");

        CapturingResponse both = new CapturingResponse(new MockHttpServletResponse(), 1024);
        both.sendRedirect("/orders/44", 307, true);
        assertThat(both.getStatus()).isEqualTo(307);
        assertThat(both.getHeader("Location")).isEqualTo("/orders/44");
    }

    /**
     * reset() forgets which of getWriter() and getOutputStream() was called, as the container's
     * response does, so the handler may take the other one after it; what was written before is
     * gone. Before, getOutputStream() after getWriter() and reset() threw IllegalStateException.
     */
    @Test
    void afterAResetTheOtherOfWriterAndStreamMayBeTaken() throws Exception {
        CapturingResponse writtenThenStreamed = new CapturingResponse(new MockHttpServletResponse(), 1024);
        writtenThenStreamed.getWriter().write("draft");
        writtenThenStreamed.reset();
        writtenThenStreamed.getOutputStream().write("final".getBytes(StandardCharsets.UTF_8));
        assertThat(new String(writtenThenStreamed.body(), StandardCharsets.UTF_8))
                .isEqualTo("final");

        CapturingResponse streamedThenWritten = new CapturingResponse(new MockHttpServletResponse(), 1024);
        streamedThenWritten.getOutputStream().write("draft".getBytes(StandardCharsets.UTF_8));
        streamedThenWritten.reset();
        streamedThenWritten.getWriter().write("final");
        assertThat(new String(streamedThenWritten.body(), StandardCharsets.UTF_8))
                .isEqualTo("final");
        assertThatThrownBy(streamedThenWritten::getOutputStream)
                .as("both after the reset")
                .isInstanceOf(IllegalStateException.class);
    }

    /**
     * The body held is bounded: a write past the bound throws (the stream) or sets the writer's error flag, nothing
     * past the bound is kept, and the overflow stays known after a reset, so the filter fails the request.
     */
    @Test
    void aBodyPastTheBoundIsNotHeldAndTheOverflowIsKnown() throws Exception {
        CapturingResponse streamed = new CapturingResponse(new MockHttpServletResponse(), 8);
        streamed.getOutputStream().write(new byte[8]);
        assertThat(streamed.overflowed()).isFalse();
        assertThatThrownBy(() -> streamed.getOutputStream().write(1))
                .isInstanceOf(IOException.class)
                .hasMessageContaining("maxResponseBytes");
        assertThat(streamed.overflowed()).isTrue();
        assertThat(streamed.body()).hasSize(8);
        streamed.resetBuffer();
        assertThat(streamed.overflowed()).as("after a reset").isTrue();

        CapturingResponse written = new CapturingResponse(new MockHttpServletResponse(), 8);
        written.getWriter().write("123456789");
        assertThat(written.overflowed()).isTrue();
        assertThat(written.getWriter().checkError()).isTrue();
        assertThat(written.body()).isEmpty();

        CapturingResponse refused = new CapturingResponse(new MockHttpServletResponse(), 8);
        refused.sendError(400, "longer than eight bytes");
        assertThat(refused.overflowed()).as("a sendError reason counts too").isTrue();
    }

    /**
     * sendError is held back like a body and sent, with its reason, once the transaction has ended, so that the
     * container's error page answers: nothing is written as the body (before, the reason was, as text/plain),
     * writes after it are ignored as a container ignores them, and a reset takes it back.
     */
    @Test
    void anErrorIsHeldBackForTheContainersErrorPage() throws Exception {
        MockHttpServletResponse container = new MockHttpServletResponse();
        CapturingResponse captured = new CapturingResponse(container, 1024);
        captured.getWriter().write("draft");
        captured.sendError(422, "out of stock");
        captured.getWriter().write("after the error");
        assertThat(captured.errorSent()).isTrue();
        assertThat(captured.errorMessage()).isEqualTo("out of stock");
        assertThat(captured.getStatus()).isEqualTo(422);
        assertThat(captured.body()).isEmpty();
        assertThat(captured.getContentType()).isNull();
        assertThat(container.isCommitted()).isFalse();
        assertThat(container.getErrorMessage())
                .as("the error sent to the container")
                .isNull();

        Responses.send(container, captured);
        assertThat(container.getStatus()).isEqualTo(422);
        assertThat(container.getErrorMessage()).isEqualTo("out of stock");

        // as a container: nothing changes the error once it is sent
        captured.setStatus(201);
        captured.setHeader("Location", "/orders/42");
        captured.setContentType("application/json");
        captured.setLocale(Locale.GERMAN);
        assertThat(captured.getStatus()).as("a status set after the error").isEqualTo(422);
        assertThat(container.getHeader("Content-Language")).isNull();
        assertThat(captured.getHeader("Location")).isNull();
        assertThat(captured.isCommitted()).isTrue();
        assertThatThrownBy(() -> captured.sendRedirect("/orders/42")).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> captured.sendError(500)).isInstanceOf(IllegalStateException.class);

        CapturingResponse withoutReason = new CapturingResponse(new MockHttpServletResponse(), 1024);
        withoutReason.sendError(404);
        assertThat(withoutReason.errorSent()).isTrue();
        assertThat(withoutReason.errorMessage()).isNull();
        withoutReason.reset();
        assertThat(withoutReason.errorSent()).as("after a reset").isFalse();
        assertThat(withoutReason.isCommitted()).isFalse();
    }

    /**
     * A stored error is replayed as an error, for the container's error page, without the marker or the reason's
     * content type; a response stored before errors were kept so (the reason as a text/plain body, no marker) is
     * replayed as it was stored; and a stored error is kept so that a filter of that earlier version replays it as
     * it used to answer.
     */
    @Test
    void storedErrorsAreReplayedAsErrorsAndEarlierResponsesAsStored() throws Exception {
        CapturingResponse captured = new CapturingResponse(new MockHttpServletResponse(), 1024);
        captured.setHeader("Location", "/orders/42");
        captured.sendError(422, "out of stock");
        StoredResponse stored = Responses.capture(captured, List.of("Content-Type", "Location"));
        assertThat(stored.status()).isEqualTo(422);
        assertThat(stored.header("Content-Type")).isEqualTo("text/plain;charset=UTF-8");
        assertThat(stored.header(StoredResponse.SEND_ERROR)).isEqualTo("reason");
        assertThat(new String(stored.body(), StandardCharsets.UTF_8)).isEqualTo("out of stock");

        MockHttpServletResponse replayed = new MockHttpServletResponse();
        Responses.replay(replayed, stored);
        assertThat(replayed.getStatus()).isEqualTo(422);
        assertThat(replayed.getErrorMessage()).isEqualTo("out of stock");
        assertThat(replayed.getHeader(StoredResponse.SEND_ERROR)).isNull();
        assertThat(replayed.getContentType()).isNull();
        assertThat(replayed.getHeader("Location")).isEqualTo("/orders/42");
        assertThat(replayed.getHeader("Idempotent-Replayed")).isEqualTo("true");
        assertThat(replayed.getContentAsByteArray()).isEmpty();

        CapturingResponse bare = new CapturingResponse(new MockHttpServletResponse(), 1024);
        bare.sendError(404);
        MockHttpServletResponse replayedBare = new MockHttpServletResponse();
        Responses.replay(replayedBare, Responses.capture(bare, List.of("Content-Type")));
        assertThat(replayedBare.getStatus()).isEqualTo(404);
        assertThat(replayedBare.isCommitted()).as("an error sent").isTrue();
        assertThat(replayedBare.getErrorMessage()).isNull();

        StoredResponse earlier =
                StoredResponse.of(422, "text/plain;charset=UTF-8", "out of stock".getBytes(StandardCharsets.UTF_8));
        MockHttpServletResponse replayedEarlier = new MockHttpServletResponse();
        Responses.replay(replayedEarlier, earlier);
        assertThat(replayedEarlier.getStatus()).isEqualTo(422);
        assertThat(replayedEarlier.getErrorMessage()).isNull();
        assertThat(replayedEarlier.getContentType()).isEqualTo("text/plain;charset=UTF-8");
        assertThat(replayedEarlier.getContentAsString()).isEqualTo("out of stock");
    }
}
