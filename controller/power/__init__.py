"""Power actions the controller carries out itself: wake-on-LAN (direct, through relay agents, paced in
waves, verified by the device reporting in) and agentless SSH for servers without an agent."""
