/* libFuzzer target: the configuration loader on arbitrary bytes.
 *
 * The input is loaded as a static file from memory, with name resolution
 * limited to numeric addresses and "localhost" and without reading the file
 * provider's files, so that no input touches the network or the disk.
 * Errors are formatted and everything is freed, so ASan sees every path.
 */
#include <stdint.h>
#include <stdlib.h>

#include "config/config.h"

static void use_model(const weir_config_t *cfg)
{
    /* references the proxy will follow must point inside the model */
    for (size_t i = 0; i < cfg->num_routers; i++) {
        const weir_router_cfg_t *r = &cfg->routers[i];
        if (r->service_index < 0 || (size_t)r->service_index >= cfg->num_services) abort();
        if (weir_config_find_service(cfg, r->service) != r->service_index) abort();
    }
    for (size_t i = 0; i < cfg->num_services; i++) {
        const weir_service_cfg_t *s = &cfg->services[i];
        if (s->transport_index < 0 || (size_t)s->transport_index >= cfg->num_transports) abort();
        for (size_t k = 0; k < s->num_children; k++)
            if (s->children[k].index < 0 || (size_t)s->children[k].index >= cfg->num_services)
                abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    weir_config_t *cfg = NULL;
    weir_config_errors_t errs;
    int rc = weir_config_load_buffer("fuzz.yml", (const char *)data, size,
                                     WEIR_CONFIG_NO_DNS | WEIR_CONFIG_NO_FILES, &cfg, &errs);
    if (rc == 0) {
        if (!cfg || errs.count) abort();
        use_model(cfg);
    } else if (cfg || errs.count == 0) {
        abort();
    }
    for (size_t i = 0; i < errs.count; i++)
        free(weir_config_error_format(&errs.items[i]));
    weir_config_free(cfg);
    weir_config_errors_free(&errs);
    return 0;
}
