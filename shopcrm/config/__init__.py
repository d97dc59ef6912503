"""The config file: its shape (`schema`) and how it is read and checked (`load`)."""
