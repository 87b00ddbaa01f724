include $(sort $(wildcard $(BR2_EXTERNAL_TALOS_RS_PATH)/package/*/*.mk))
