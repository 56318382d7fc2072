from glob import glob

from setuptools import find_packages
from setuptools import setup

package_name = 'wallwm_bringup'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
        ('share/' + package_name + '/config/profiles', glob('config/profiles/*.yaml')),
        ('share/' + package_name + '/config/gazebo', glob('config/gazebo/*.yaml')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='wallwm maintainers',
    maintainer_email='maintainers@wallwm.dev',
    description='Launch files, robot profiles and the pip-only launcher for wallwm',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'launch = wallwm_bringup.launcher:main',
            'validate_profile = wallwm_bringup.profiles:main',
        ],
    },
)
