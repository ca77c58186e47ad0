/*
 * config_reload: a role's reload (config_reload.h).
 */
#include "config/config_reload.h"

#include "common/buf.h"
#include "common/log.h"
#include "common/rolectl.h"

/* Room for every FILE:LINE: message of a broken file. */
#define CONFIG_RELOAD_ERRORS_MAX (64u * 1024)

struct config *
config_reload_load(const char *path, int control_fd)
{
	struct buf errors;
	struct config *cfg;

	buf_init(&errors, CONFIG_RELOAD_ERRORS_MAX);
	cfg = config_load(path, &errors);
	if (cfg == NULL) {
		log_warning("reload: keeping the old configuration: %s", buf_cstr(&errors));
		rolectl_send(control_fd, FRAME_CHILD_RELOADED, "configuration errors", 0);
	}
	buf_free(&errors);
	return cfg;
}

void
config_reload_done(const struct config *cfg, const char *path, int control_fd)
{
	log_set_hostname(config_str(cfg, P_MYHOSTNAME));
	log_info("reload: configuration %s", path ? path : "(development defaults)");
	rolectl_send(control_fd, FRAME_CHILD_RELOADED, "", 0);
}
