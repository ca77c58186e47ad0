/*
 * lmtp: the role's entry (lmtp.h says why it is this small).
 */
#include "lmtp/lmtp.h"

#include "delivery/smtp_agent.h"

int
lmtp_main(const char *cfg_path, struct config *cfg, int control_fd)
{
	return lmtp_agent_main(cfg_path, cfg, control_fd);
}
