package dev.outbox.relay.process;

import java.util.regex.Pattern;

/**
 * The variables Kubernetes puts into every pod for a Service named {@code outbox-relay} ({@code
 * OUTBOX_RELAY_SERVICE_HOST}, {@code OUTBOX_RELAY_SERVICE_PORT[_<name>]}, {@code OUTBOX_RELAY_PORT},
 * {@code OUTBOX_RELAY_PORT_<port>_<protocol>[_PROTO|_PORT|_ADDR]}). They share the settings' prefix
 * but are not settings: they are ignored, while any other unknown {@code OUTBOX_RELAY_*} name is
 * still refused as a typo.
 */
final class KubernetesServiceEnv {
    private static final Pattern SERVICE = Pattern.compile(Pattern.quote(RelaySettings.ENV_PREFIX)
            + "(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT|PORT_[0-9]{1,5}_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)");

    private KubernetesServiceEnv() {}

    /** @return whether {@code name} is one of the Service variables (and so not a setting) */
    static boolean matches(String name) {
        return SERVICE.matcher(name).matches();
    }
}
